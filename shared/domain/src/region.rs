//! Administrative division codes (行政区划代码, GB/T 2260): the 6-digit `region_code` of every event, and the
//! province-level prefix that also opens resident ID numbers and sits inside Unified Social Credit Codes.

use thiserror::Error;

/// The province-level divisions (first two digits of a division code) and their names.
pub const PROVINCES: [(&str, &str); 34] = [
    ("11", "北京市"),
    ("12", "天津市"),
    ("13", "河北省"),
    ("14", "山西省"),
    ("15", "内蒙古自治区"),
    ("21", "辽宁省"),
    ("22", "吉林省"),
    ("23", "黑龙江省"),
    ("31", "上海市"),
    ("32", "江苏省"),
    ("33", "浙江省"),
    ("34", "安徽省"),
    ("35", "福建省"),
    ("36", "江西省"),
    ("37", "山东省"),
    ("41", "河南省"),
    ("42", "湖北省"),
    ("43", "湖南省"),
    ("44", "广东省"),
    ("45", "广西壮族自治区"),
    ("46", "海南省"),
    ("50", "重庆市"),
    ("51", "四川省"),
    ("52", "贵州省"),
    ("53", "云南省"),
    ("54", "西藏自治区"),
    ("61", "陕西省"),
    ("62", "甘肃省"),
    ("63", "青海省"),
    ("64", "宁夏回族自治区"),
    ("65", "新疆维吾尔自治区"),
    ("71", "台湾省"),
    ("81", "香港特别行政区"),
    ("82", "澳门特别行政区"),
];

/// Why a region code was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegionError {
    /// Not exactly six ASCII digits.
    #[error("region code must be exactly 6 digits (行政区划代码), found {found:?}")]
    NotSixDigits {
        /// What was given.
        found: String,
    },
    /// The first two digits are not a province-level division.
    #[error("region code starts with {prefix}, which is not a province-level division code (11 Beijing ... 82 Macao)")]
    UnknownProvince {
        /// The first two digits.
        prefix: String,
    },
}

/// Whether `two` is the two-digit code of a real province-level division (11-15, 21-23, 31-37, 41-46, 50-54, 61-65,
/// 71, 81, 82).
pub fn is_province_prefix(two: &str) -> bool {
    province_name(two).is_some()
}

/// The name of the province-level division with this two-digit code.
pub fn province_name(two: &str) -> Option<&'static str> {
    PROVINCES
        .iter()
        .find(|(code, _)| *code == two)
        .map(|(_, name)| *name)
}

/// Checks a 6-digit administrative division code: six ASCII digits whose first two name a province.
pub fn validate_region_code(code: &str) -> Result<(), RegionError> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegionError::NotSixDigits {
            found: code.chars().take(32).collect(),
        });
    }
    // Six ASCII digits, so byte slicing is on char boundaries.
    let prefix = &code[..2];
    if !is_province_prefix(prefix) {
        return Err(RegionError::UnknownProvince {
            prefix: prefix.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_six_digit_codes_of_real_provinces() {
        for code in ["110105", "330106", "530102", "820000", "650100", "710000"] {
            assert_eq!(validate_region_code(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn rejects_codes_that_are_not_six_digits() {
        for code in ["", "11010", "1101050", "11010a", "１１０１０５", " 110105"] {
            assert!(
                matches!(
                    validate_region_code(code),
                    Err(RegionError::NotSixDigits { .. })
                ),
                "{code:?}"
            );
        }
    }

    #[test]
    fn rejects_unknown_province_prefixes() {
        for code in [
            "100000", "160000", "200000", "390000", "470000", "550000", "660000", "720000",
            "830000", "990000",
        ] {
            assert_eq!(
                validate_region_code(code),
                Err(RegionError::UnknownProvince {
                    prefix: code[..2].to_owned()
                }),
                "{code}"
            );
        }
    }

    #[test]
    fn province_list_is_the_thirty_four_divisions() {
        let expected: Vec<u8> = (11..=15)
            .chain(21..=23)
            .chain(31..=37)
            .chain(41..=46)
            .chain(50..=54)
            .chain(61..=65)
            .chain([71, 81, 82])
            .collect();
        let actual: Vec<u8> = (0..=99u8)
            .filter(|n| is_province_prefix(&format!("{n:02}")))
            .collect();
        assert_eq!(actual, expected);
    }
}
