//! Where the population lives: the counties (6-digit division codes) under the `region` prefix, their names, the names
//! of their agencies, and the province abbreviation that opens court file numbers.
//!
//! A few cities the seeds talk about (Yueyang, Kunming, Changzhou, Hangzhou) and two more are tabled with their real
//! counties; any other valid prefix gets plausible county codes (02, 03, 11, 21 … 81) with generic names.

use caselink_domain::{is_province_prefix, province_name};

/// One county-level division.
#[derive(Debug, Clone)]
pub(crate) struct County {
    /// 6-digit division code.
    pub(crate) code: String,
    /// E.g. `岳阳楼区`.
    pub(crate) name: String,
}

/// The counties under the prefix, and the names that go into addresses and agency names.
#[derive(Debug, Clone)]
pub(crate) struct Regions {
    /// Province and city, e.g. `湖南省岳阳市`, opening every address.
    pub(crate) city_prefix: String,
    /// The city, e.g. `岳阳市` (the 12345 hotline centre and city agencies carry it).
    pub(crate) city: String,
    /// Province abbreviation, e.g. `湘`.
    pub(crate) province_short: &'static str,
    pub(crate) counties: Vec<County>,
}

struct City {
    prefix: &'static str,
    province: &'static str,
    city: &'static str,
    counties: &'static [(&'static str, &'static str)],
}

const CITIES: [City; 6] = [
    City {
        prefix: "4306",
        province: "湖南省",
        city: "岳阳市",
        counties: &[
            ("430602", "岳阳楼区"),
            ("430603", "云溪区"),
            ("430611", "君山区"),
            ("430621", "岳阳县"),
            ("430623", "华容县"),
            ("430624", "湘阴县"),
            ("430626", "平江县"),
            ("430681", "汨罗市"),
            ("430682", "临湘市"),
        ],
    },
    City {
        prefix: "4301",
        province: "湖南省",
        city: "长沙市",
        counties: &[
            ("430102", "芙蓉区"),
            ("430103", "天心区"),
            ("430104", "岳麓区"),
            ("430105", "开福区"),
            ("430111", "雨花区"),
            ("430112", "望城区"),
            ("430121", "长沙县"),
            ("430181", "浏阳市"),
            ("430182", "宁乡市"),
        ],
    },
    City {
        prefix: "5301",
        province: "云南省",
        city: "昆明市",
        counties: &[
            ("530102", "五华区"),
            ("530103", "盘龙区"),
            ("530111", "官渡区"),
            ("530112", "西山区"),
            ("530113", "东川区"),
            ("530114", "呈贡区"),
            ("530115", "晋宁区"),
            ("530124", "富民县"),
            ("530181", "安宁市"),
        ],
    },
    City {
        prefix: "3204",
        province: "江苏省",
        city: "常州市",
        counties: &[
            ("320402", "天宁区"),
            ("320404", "钟楼区"),
            ("320411", "新北区"),
            ("320412", "武进区"),
            ("320413", "金坛区"),
            ("320481", "溧阳市"),
        ],
    },
    City {
        prefix: "3301",
        province: "浙江省",
        city: "杭州市",
        counties: &[
            ("330102", "上城区"),
            ("330105", "拱墅区"),
            ("330106", "西湖区"),
            ("330108", "滨江区"),
            ("330109", "萧山区"),
            ("330110", "余杭区"),
            ("330111", "富阳区"),
            ("330112", "临安区"),
            ("330122", "桐庐县"),
            ("330127", "淳安县"),
            ("330182", "建德市"),
        ],
    },
    City {
        prefix: "1101",
        province: "北京市",
        city: "北京市",
        counties: &[
            ("110101", "东城区"),
            ("110102", "西城区"),
            ("110105", "朝阳区"),
            ("110106", "丰台区"),
            ("110107", "石景山区"),
            ("110108", "海淀区"),
            ("110112", "通州区"),
            ("110114", "昌平区"),
        ],
    },
];

/// County suffixes and names for a prefix not in the table.
const GENERIC_COUNTIES: [(&str, &str); 8] = [
    ("02", "城东区"),
    ("03", "城西区"),
    ("04", "城南区"),
    ("11", "城北区"),
    ("21", "东县"),
    ("22", "西县"),
    ("23", "南县"),
    ("81", "河口市"),
];

const PROVINCE_SHORT: [(&str, &str); 34] = [
    ("11", "京"),
    ("12", "津"),
    ("13", "冀"),
    ("14", "晋"),
    ("15", "蒙"),
    ("21", "辽"),
    ("22", "吉"),
    ("23", "黑"),
    ("31", "沪"),
    ("32", "苏"),
    ("33", "浙"),
    ("34", "皖"),
    ("35", "闽"),
    ("36", "赣"),
    ("37", "鲁"),
    ("41", "豫"),
    ("42", "鄂"),
    ("43", "湘"),
    ("44", "粤"),
    ("45", "桂"),
    ("46", "琼"),
    ("50", "渝"),
    ("51", "川"),
    ("52", "贵"),
    ("53", "云"),
    ("54", "藏"),
    ("61", "陕"),
    ("62", "甘"),
    ("63", "青"),
    ("64", "宁"),
    ("65", "新"),
    ("71", "台"),
    ("81", "港"),
    ("82", "澳"),
];

/// Street names for addresses.
pub(crate) const ROADS: [&str; 24] = [
    "人民路",
    "解放路",
    "建设路",
    "中山路",
    "五一路",
    "东风路",
    "青年路",
    "文化路",
    "新华路",
    "胜利路",
    "朝阳路",
    "滨湖路",
    "学院路",
    "站前路",
    "迎宾路",
    "金桂路",
    "光明路",
    "和平路",
    "长江路",
    "育才路",
    "巴陵中路",
    "南湖大道",
    "求索路",
    "花园路",
];

/// Why a region prefix was refused.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    if !(prefix.len() == 4 || prefix.len() == 6) || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "must be a 4-digit city prefix (e.g. 4306 for Yueyang) or a 6-digit county code (e.g. 430602), found {:?}",
            prefix.chars().take(16).collect::<String>()
        ));
    }
    if !is_province_prefix(&prefix[..2]) {
        return Err(format!(
            "starts with {}, which is not a province-level division code (11 Beijing ... 82 Macao)",
            &prefix[..2]
        ));
    }
    if &prefix[2..4] == "00" {
        return Err(format!(
            "{prefix} is a province, not a city: give a city prefix such as {}06",
            &prefix[..2]
        ));
    }
    if prefix.len() == 6 && &prefix[4..6] == "00" {
        return Err(format!(
            "{prefix} is a city, not a county: give the 4-digit prefix {} or a county code",
            &prefix[..4]
        ));
    }
    Ok(())
}

impl Regions {
    /// The counties under a prefix already checked by [`check_prefix`].
    pub(crate) fn for_prefix(prefix: &str) -> Regions {
        let province = province_name(&prefix[..2]).unwrap_or("");
        let province_short = PROVINCE_SHORT
            .iter()
            .find(|(code, _)| *code == &prefix[..2])
            .map_or("", |(_, s)| *s);
        let tabled = CITIES.iter().find(|c| c.prefix == &prefix[..4]);
        let (city_prefix, city, mut counties): (String, String, Vec<County>) = match tabled {
            Some(c) => (
                if c.province == c.city {
                    c.city.to_owned()
                } else {
                    format!("{}{}", c.province, c.city)
                },
                c.city.to_owned(),
                c.counties
                    .iter()
                    .map(|(code, name)| County {
                        code: (*code).to_owned(),
                        name: (*name).to_owned(),
                    })
                    .collect(),
            ),
            None => {
                let city = format!("第{}市", &prefix[2..4]);
                (
                    format!("{province}{city}"),
                    city,
                    GENERIC_COUNTIES
                        .iter()
                        .map(|(suffix, name)| County {
                            code: format!("{}{suffix}", &prefix[..4]),
                            name: (*name).to_owned(),
                        })
                        .collect(),
                )
            }
        };
        if prefix.len() == 6 {
            let name = counties
                .iter()
                .find(|c| c.code == prefix)
                .map_or_else(|| format!("第{}区", &prefix[4..6]), |c| c.name.clone());
            counties = vec![County {
                code: prefix.to_owned(),
                name,
            }];
        }
        Regions {
            city_prefix,
            city,
            province_short,
            counties,
        }
    }

    /// The market supervision bureau of a county, e.g. `岳阳楼区市场监督管理局`.
    pub(crate) fn market_bureau(&self, county: usize) -> String {
        format!("{}市场监督管理局", self.counties[county].name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use caselink_domain::validate_region_code;

    #[test]
    fn yueyang_has_its_real_counties() {
        let r = Regions::for_prefix("4306");
        let codes: Vec<&str> = r.counties.iter().map(|c| c.code.as_str()).collect();
        assert!(codes.contains(&"430602") && codes.contains(&"430681"));
        assert_eq!(r.city_prefix, "湖南省岳阳市");
        assert_eq!(r.province_short, "湘");
        assert_eq!(r.market_bureau(0), "岳阳楼区市场监督管理局");
    }

    #[test]
    fn every_prefix_gives_valid_codes_under_it() {
        for prefix in ["4306", "430602", "5301", "6501", "650102", "1101"] {
            check_prefix(prefix).unwrap();
            let r = Regions::for_prefix(prefix);
            assert!(!r.counties.is_empty());
            for c in &r.counties {
                assert!(c.code.starts_with(prefix), "{prefix}: {}", c.code);
                validate_region_code(&c.code).unwrap();
            }
        }
    }

    #[test]
    fn refuses_prefixes_that_are_not_a_city_or_county() {
        for bad in [
            "43", "43060", "4300", "430600", "9906", "43a6", "", "43060201",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
