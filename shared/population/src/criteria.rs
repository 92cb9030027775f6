//! The screening criteria of domain.md section 5 (Yueyang guideline, sections 2 and 3) a planted person meets, and the
//! default thresholds the generator keeps its margins against.

/// One criterion of the guideline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Criterion {
    /// 二(一) repeat claims after punitive compensation.
    C1,
    /// 二(二) bulk purchase.
    C2,
    /// 二(三) false name: filing under another person's ID number.
    C3,
    /// 二(四) collusion between complainants.
    C4,
    /// 二(五) hired complainants.
    C5,
    /// 二(六) volume far above normal.
    C6,
    /// 二(七) fabricated disputes.
    C7,
    /// 三(一) planting, swapping, forging dates, fabricating facts, extortion.
    R1,
    /// 三(二) repeated untrue reports of one violation type.
    R2,
    /// 三(三) repeated appeals on report matters.
    R3,
    /// 三(四) repeated disclosure requests out of scope.
    R4,
    /// 三(五) repeated untrue reports to discipline inspection.
    R5,
}

impl Criterion {
    pub(crate) const ALL: [Criterion; 12] = [
        Criterion::C1,
        Criterion::C2,
        Criterion::C3,
        Criterion::C4,
        Criterion::C5,
        Criterion::C6,
        Criterion::C7,
        Criterion::R1,
        Criterion::R2,
        Criterion::R3,
        Criterion::R4,
        Criterion::R5,
    ];

    /// `"C1"` … `"R5"`, as truth.json writes it.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Criterion::C1 => "C1",
            Criterion::C2 => "C2",
            Criterion::C3 => "C3",
            Criterion::C4 => "C4",
            Criterion::C5 => "C5",
            Criterion::C6 => "C6",
            Criterion::C7 => "C7",
            Criterion::R1 => "R1",
            Criterion::R2 => "R2",
            Criterion::R3 => "R3",
            Criterion::R4 => "R4",
            Criterion::R5 => "R5",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of criteria.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Criteria(u16);

impl Criteria {
    pub(crate) fn has(self, c: Criterion) -> bool {
        self.0 & c.bit() != 0
    }

    pub(crate) fn add(&mut self, c: Criterion) {
        self.0 |= c.bit();
    }

    pub(crate) fn len(self) -> u32 {
        self.0.count_ones()
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Criterion> {
        Criterion::ALL.into_iter().filter(move |c| self.has(*c))
    }

    /// The codes in guideline order.
    pub(crate) fn codes(self) -> Vec<String> {
        self.iter().map(|c| c.code().to_owned()).collect()
    }
}

/// Default thresholds of domain.md section 5 and the margins kept against them.
pub(crate) mod thresholds {
    /// C6: complaints and reports in 365 days that flag a person (20); planted volume stays at or above
    /// [`C6_PLANTED_MIN`] a year, and everyone else at or below [`C6_OTHERS_MAX`] in any 365 days.
    pub(crate) const C6_WINDOW_DAYS: i64 = 365;
    pub(crate) const C6_PLANTED_MIN: u32 = 25;
    pub(crate) const C6_OTHERS_MAX: usize = 15;
    /// R2: unsubstantiated reports of one violation type (3); others keep at most 2.
    pub(crate) const R2_OTHERS_MAX: u8 = 2;
}
