//! Who the people are: resident ID numbers (GB 11643), names, mobile numbers and home addresses, every one of them
//! unique in the population so that the only shared contacts are the ones planted on purpose (rings, hired
//! complainants, impersonation).
//!
//! Uniqueness without remembering every number: an ID number's birth place and date are drawn at random, and its
//! sequence comes from a counter per (county, birth date, sex); phones and addresses are bijective scrambles of a
//! running number.

use caselink_domain::id_check_char;
use caselink_proto::v1::Person;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::calendar::{date_of_day, day_of_date, years_before};
use crate::regions::{Regions, ROADS};

/// The 100 commonest surnames, commonest first.
const SURNAMES: [&str; 100] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "闫", "段", "雷", "侯",
    "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "覃", "武", "戴",
    "莫", "孔", "向", "汤",
];

const MALE_GIVEN: [&str; 48] = [
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "阳", "建", "国",
    "志", "文", "海", "峰", "亮", "成", "东", "兵", "新", "春", "德", "永", "胜", "长", "晨", "昊",
];

const FEMALE_GIVEN: [&str; 48] = [
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "燕", "红", "婷", "雪", "琳", "晶",
    "妍", "倩", "颖", "慧", "莉", "梅", "兰", "萍", "琴", "云", "洁", "丹", "蓉", "薇", "欣", "怡",
    "佳", "悦", "璐", "瑶", "露", "月", "英", "珍", "凤", "华", "萱", "雯", "婧", "淑", "桂", "春",
];

/// Mobile prefixes in use (China Mobile, Unicom, Telecom, broadcasting).
const MOBILE_PREFIXES: [&str; 36] = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "170", "173", "176", "177", "178", "180", "181",
    "182", "183", "184", "185", "186", "187", "188", "189", "191", "199",
];

/// Youngest and oldest age at the end of the history.
const MIN_AGE: i32 = 18;
const MAX_AGE: i32 = 80;
/// Distinct sequence numbers per (county, birth date, sex): 499 odd for men (001-997), 499 even for women (002-998).
const SEQUENCES: u16 = 499;

/// One person's clear identity, as a department would submit it, and where they live.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) person: Person,
    /// Index of the home county in [`Regions::counties`].
    pub(crate) county: usize,
}

/// Hands out unique identities and contacts.
pub(crate) struct IdentityFactory {
    /// Epoch day of the earliest birth date.
    first_birth_day: i64,
    birth_days: i64,
    counties: usize,
    /// Persons already born in each (county, day, sex) slot.
    used: Vec<u16>,
    phones: u64,
    addresses: u64,
    /// Modulus of the address scramble: 6,480 flats per house number times a power of two of house numbers.
    address_space: u64,
}

/// Flats per house number: 30 buildings x 3 units x 18 floors x 4 doors.
const FLATS_PER_NUMBER: u64 = 30 * 3 * 18 * 4;

impl IdentityFactory {
    /// For a population of about `people` persons whose history ends on epoch day `end_day`.
    pub(crate) fn new(regions: &Regions, end_day: i64, people: usize) -> IdentityFactory {
        let end = date_of_day(end_day);
        let youngest = years_before(end, MIN_AGE).map_or(end_day, day_of_date);
        let oldest = years_before(end, MAX_AGE).map_or(end_day, day_of_date) + 1;
        let birth_days = (youngest - oldest + 1).max(1);
        let counties = regions.counties.len();
        let slots = usize::try_from(birth_days).unwrap_or(1) * counties * 2;
        // Twice the persons, plus the shared addresses of rings and agents.
        let needed = (people as u64).saturating_mul(2) / FLATS_PER_NUMBER + 2;
        IdentityFactory {
            first_birth_day: oldest,
            birth_days,
            counties,
            used: vec![0; slots],
            phones: 0,
            addresses: 0,
            address_space: FLATS_PER_NUMBER * needed.next_power_of_two(),
        }
    }

    /// A new person: valid unique ID number, a name matching the sex in it, their own phone and address.
    pub(crate) fn person(&mut self, rng: &mut ChaCha8Rng, regions: &Regions) -> Identity {
        loop {
            let county = rng.random_range(0..self.counties);
            // Ages lean to the middle: the sum of two uniform draws.
            let a = rng.random_range(0..self.birth_days);
            let b = rng.random_range(0..self.birth_days);
            let offset = (a + b) / 2;
            let male = rng.random_bool(0.5);
            let slot = (usize::from(male) * self.counties + county)
                * usize::try_from(self.birth_days).unwrap_or(1)
                + usize::try_from(offset).unwrap_or(0);
            let used = self.used[slot];
            if used >= SEQUENCES {
                continue;
            }
            self.used[slot] = used + 1;
            // A scramble of the running number, so that sequences do not look like 001, 003, 005.
            let scramble = (u64::from(used) * 37 + (slot as u64).wrapping_mul(2_654_435_761))
                % u64::from(SEQUENCES);
            let sequence = if male {
                2 * scramble + 1
            } else {
                2 * (scramble + 1)
            };
            let birth = date_of_day(self.first_birth_day + offset);
            let first17 = format!(
                "{}{:04}{:02}{:02}{:03}",
                regions.counties[county].code,
                birth.year(),
                u8::from(birth.month()),
                birth.day(),
                sequence
            );
            let check = id_check_char(&first17).expect("17 digits by construction");
            let id_number = format!("{first17}{check}");
            let name = name(rng, male);
            let phone = self.phone(rng);
            let address = self.address(rng, regions, county);
            return Identity {
                person: Person {
                    id_number,
                    name,
                    phone,
                    address,
                    ..Person::default()
                },
                county,
            };
        }
    }

    /// A mobile number never handed out before.
    pub(crate) fn phone(&mut self, rng: &mut ChaCha8Rng) -> String {
        let n = self.phones;
        self.phones += 1;
        // Multiplying by a number coprime to 10^8 is a bijection on the last eight digits.
        let tail = (n.wrapping_mul(73_939_133) + 20_240_601) % 100_000_000;
        let prefix = MOBILE_PREFIXES[rng.random_range(0..MOBILE_PREFIXES.len())];
        format!("{prefix}{tail:08}")
    }

    /// A flat in `county` never handed out before.
    pub(crate) fn address(
        &mut self,
        rng: &mut ChaCha8Rng,
        regions: &Regions,
        county: usize,
    ) -> String {
        let n = self.addresses;
        self.addresses += 1;
        // 2,654,435,761 is coprime to 2, 3 and 5, the only prime factors of the address space: a bijection.
        let s = (n.wrapping_mul(2_654_435_761) + 7_919) % self.address_space;
        let door = s % 4 + 1;
        let floor = (s / 4) % 18 + 1;
        let unit = (s / 72) % 3 + 1;
        let building = (s / 216) % 30 + 1;
        let number = s / FLATS_PER_NUMBER + 1;
        let road = ROADS[rng.random_range(0..ROADS.len())];
        format!(
            "{}{}{road}{number}号{building}栋{unit}单元{floor}{door:02}室",
            regions.city_prefix, regions.counties[county].name
        )
    }
}

/// A Chinese name: a surname (commoner ones likelier) and one or two given characters.
fn name(rng: &mut ChaCha8Rng, male: bool) -> String {
    let u: f64 = rng.random();
    let surname = SURNAMES[((u * u) * SURNAMES.len() as f64) as usize % SURNAMES.len()];
    let given = if male { &MALE_GIVEN } else { &FEMALE_GIVEN };
    let first = given[rng.random_range(0..given.len())];
    if rng.random_bool(0.75) {
        let second = given[rng.random_range(0..given.len())];
        format!("{surname}{first}{second}")
    } else {
        format!("{surname}{first}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::calendar::parse_date;
    use caselink_domain::{looks_like_phone, parse_id_number};
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    #[test]
    fn identities_are_valid_unique_and_of_age() {
        let regions = Regions::for_prefix("430602");
        let end = day_of_date(parse_date("2026-06-30").unwrap());
        let mut f = IdentityFactory::new(&regions, end, 20_000);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut ids = BTreeSet::new();
        let mut phones = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for _ in 0..20_000 {
            let p = f.person(&mut rng, &regions).person;
            let id = parse_id_number(&p.id_number).unwrap();
            assert!(p.id_number.starts_with("430602"));
            let born = id.birth_date();
            assert!(
                born.year() >= 2026 - 81 && born.year() <= 2026 - 18,
                "{born}"
            );
            let male = (p.id_number.as_bytes()[16] - b'0') % 2 == 1;
            let given: String = p.name.chars().skip(1).collect();
            let list: &[&str] = if male { &MALE_GIVEN } else { &FEMALE_GIVEN };
            assert!(given
                .chars()
                .all(|c| list.contains(&c.to_string().as_str())));
            assert!(looks_like_phone(&p.phone) && p.phone.len() == 11);
            assert!(ids.insert(p.id_number));
            assert!(phones.insert(p.phone[3..].to_owned()));
            assert!(addresses.insert(p.address));
        }
    }
}
