//! Who is complained about: a pool of merchants sized to the population, each with a valid Unified Social Credit Code
//! (GB 32100) registered in a county under the region prefix, a name, and a goods or service category; and per
//! category what is sold, at what usual price, and what goes wrong with it.

use std::collections::BTreeSet;

use caselink_domain::uscc_check_char;
use caselink_proto::v1::{GoodsCategory, Merchant, ViolationType};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::regions::Regions;

/// What a category sells and how it goes wrong.
pub(crate) struct Category {
    pub(crate) category: GoodsCategory,
    /// Share of merchants, in per mille.
    weight: u32,
    /// Usual price of one purchase, in fen: the median planted amounts scatter around (rule C2 compares with it).
    pub(crate) median_fen: i64,
    /// Goods and their unit word.
    pub(crate) goods: &'static [(&'static str, &'static str)],
    /// What shops of this category are called.
    shops: &'static [&'static str],
    /// What consumers find wrong.
    pub(crate) problems: &'static [&'static str],
    /// Violations reports about this category allege.
    pub(crate) violations: &'static [ViolationType],
    /// Whether a buyer may claim ten times the price (Food Safety Law art. 148) rather than three times the loss.
    pub(crate) food_law: bool,
}

use GoodsCategory as G;
use ViolationType as V;

pub(crate) const CATEGORIES: [Category; 16] = [
    Category {
        category: G::Food,
        weight: 260,
        median_fen: 3_000,
        goods: &[
            ("纯牛奶", "箱"),
            ("进口饼干", "盒"),
            ("散装熟食", "斤"),
            ("火腿肠", "包"),
            ("速冻水饺", "袋"),
            ("食用油", "桶"),
            ("坚果礼盒", "盒"),
            ("辣条", "包"),
            ("进口巧克力", "盒"),
            ("蜂蜜", "瓶"),
        ],
        shops: &["超市", "食品商行", "副食店", "生鲜超市", "便利店"],
        problems: &[
            "已超过保质期",
            "包装上没有中文标签",
            "生产日期标注不清",
            "食用后出现腹泻",
            "里面有异物",
            "标签配料表与实物不符",
            "已经变质发霉",
        ],
        violations: &[V::Expired, V::Labelling, V::NoChineseLabel, V::FoodSafety],
        food_law: true,
    },
    Category {
        category: G::Catering,
        weight: 120,
        median_fen: 15_000,
        goods: &[
            ("套餐", "份"),
            ("外卖", "份"),
            ("宴席", "桌"),
            ("预付卡", "张"),
        ],
        shops: &["餐厅", "酒楼", "餐饮店", "小吃店"],
        problems: &[
            "菜品中吃出异物",
            "用餐后身体不适",
            "预付卡余额无法使用",
            "实际收费高于菜单标价",
        ],
        violations: &[V::FoodSafety, V::Price, V::Unlicensed],
        food_law: true,
    },
    Category {
        category: G::HealthFood,
        weight: 50,
        median_fen: 25_000,
        goods: &[
            ("蛋白粉", "罐"),
            ("鱼油胶囊", "瓶"),
            ("维生素片", "瓶"),
            ("灵芝孢子粉", "盒"),
        ],
        shops: &["保健品店", "健康咨询服务部", "养生馆"],
        problems: &[
            "宣传有治疗功效",
            "没有保健食品标志",
            "已超过保质期",
            "标签标注不规范",
        ],
        violations: &[V::FalseAdvertising, V::Labelling, V::Expired],
        food_law: true,
    },
    Category {
        category: G::Cosmetics,
        weight: 70,
        median_fen: 18_000,
        goods: &[
            ("面霜", "瓶"),
            ("精华液", "瓶"),
            ("面膜", "盒"),
            ("防晒霜", "支"),
            ("口红", "支"),
        ],
        shops: &["化妆品店", "美妆店"],
        problems: &[
            "使用后皮肤过敏",
            "没有中文标签",
            "宣传功效与实际不符",
            "疑似假冒产品",
        ],
        violations: &[V::NoChineseLabel, V::FalseAdvertising, V::Quality],
        food_law: false,
    },
    Category {
        category: G::Drugs,
        weight: 30,
        median_fen: 6_000,
        goods: &[("感冒药", "盒"), ("创可贴", "盒"), ("眼药水", "支")],
        shops: &["大药房", "药店"],
        problems: &["已过有效期", "价格高于标价", "无处方销售处方药"],
        violations: &[V::Expired, V::Price, V::Unlicensed],
        food_law: false,
    },
    Category {
        category: G::MedicalDevices,
        weight: 15,
        median_fen: 60_000,
        goods: &[("血压计", "台"), ("血糖仪", "台"), ("医用口罩", "盒")],
        shops: &["医疗器械店"],
        problems: &["测量数据不准", "没有注册证号", "使用不久即损坏"],
        violations: &[V::Quality, V::Unlicensed, V::Labelling],
        food_law: false,
    },
    Category {
        category: G::Electronics,
        weight: 70,
        median_fen: 180_000,
        goods: &[
            ("手机", "部"),
            ("蓝牙耳机", "副"),
            ("平板电脑", "台"),
            ("电饭煲", "台"),
            ("空气炸锅", "台"),
        ],
        shops: &["电器商行", "数码城", "手机店"],
        problems: &[
            "买回不久就出现故障",
            "翻新机冒充新机",
            "商家拒绝三包",
            "实际配置与宣传不符",
        ],
        violations: &[V::Quality, V::FalseAdvertising, V::Price],
        food_law: false,
    },
    Category {
        category: G::Clothing,
        weight: 70,
        median_fen: 30_000,
        goods: &[("羽绒服", "件"), ("运动鞋", "双"), ("牛仔裤", "条")],
        shops: &["服饰店", "鞋业", "服装店"],
        problems: &[
            "洗后严重褪色",
            "含绒量与标注不符",
            "穿了几天就开胶",
            "吊牌成分标注不实",
        ],
        violations: &[V::Quality, V::Labelling],
        food_law: false,
    },
    Category {
        category: G::Household,
        weight: 60,
        median_fen: 12_000,
        goods: &[
            ("洗衣液", "桶"),
            ("床上四件套", "套"),
            ("保温杯", "个"),
            ("电热水壶", "个"),
        ],
        shops: &["日用品店", "家居馆"],
        problems: &["质量低劣", "保温效果与宣传不符", "有刺鼻异味"],
        violations: &[V::Quality, V::FalseAdvertising],
        food_law: false,
    },
    Category {
        category: G::AlcoholTobacco,
        weight: 45,
        median_fen: 40_000,
        goods: &[("白酒", "瓶"), ("红酒", "瓶"), ("啤酒", "箱")],
        shops: &["烟酒商行", "名酒行"],
        problems: &["疑似假酒", "进口酒没有中文标签", "生产日期被涂改"],
        violations: &[V::NoChineseLabel, V::Labelling, V::Quality],
        food_law: true,
    },
    Category {
        category: G::Education,
        weight: 30,
        median_fen: 600_000,
        goods: &[("培训课程", "期"), ("健身卡", "张")],
        shops: &["培训学校", "教育咨询有限公司", "健身会所"],
        problems: &["停课后拒不退费", "机构跑路", "承诺效果未兑现"],
        violations: &[V::FalseAdvertising, V::Other],
        food_law: false,
    },
    Category {
        category: G::Telecom,
        weight: 25,
        median_fen: 12_000,
        goods: &[("宽带套餐", "个"), ("手机套餐", "个")],
        shops: &["通信营业厅"],
        problems: &["被擅自变更套餐", "乱扣费", "宽带长期无法使用"],
        violations: &[V::Price, V::Other],
        food_law: false,
    },
    Category {
        category: G::Travel,
        weight: 20,
        median_fen: 350_000,
        goods: &[("旅游团费", "人"), ("酒店预订", "间")],
        shops: &["旅行社", "酒店"],
        problems: &["强制购物", "行程被擅自变更", "预订后无法入住"],
        violations: &[V::FalseAdvertising, V::Price],
        food_law: false,
    },
    Category {
        category: G::RealEstate,
        weight: 10,
        median_fen: 2_000_000,
        goods: &[("装修服务", "项"), ("中介服务", "次")],
        shops: &["房地产经纪有限公司", "装饰工程有限公司"],
        problems: &["装修质量不合格", "中介费收取不合理", "拖延工期"],
        violations: &[V::Quality, V::Price],
        food_law: false,
    },
    Category {
        category: G::Vehicles,
        weight: 25,
        median_fen: 800_000,
        goods: &[("汽车维修", "次"), ("电动自行车", "辆")],
        shops: &["汽车维修服务有限公司", "车行"],
        problems: &["维修后故障依旧", "更换的配件以次充好", "电池续航与宣传不符"],
        violations: &[V::Quality, V::FalseAdvertising],
        food_law: false,
    },
    Category {
        category: G::Other,
        weight: 100,
        median_fen: 10_000,
        goods: &[("美容服务", "次"), ("洗衣服务", "次"), ("摄影服务", "次")],
        shops: &["美容店", "洗衣店", "摄影工作室"],
        problems: &["服务质量差", "办卡后拒绝退款", "衣物洗后损坏"],
        violations: &[V::Other, V::Price],
        food_law: false,
    },
];

/// Brand-like words merchants are named with.
const BRANDS: [&str; 40] = [
    "佳惠",
    "鑫源",
    "福满多",
    "金百汇",
    "天天鲜",
    "好又多",
    "百姓",
    "惠民",
    "乐购",
    "旺旺",
    "绿源",
    "康健",
    "丽人",
    "恒通",
    "大众",
    "新世纪",
    "万家福",
    "喜乐",
    "盛华",
    "宏达",
    "兴隆",
    "永和",
    "顺发",
    "美佳",
    "金色阳光",
    "湘味",
    "楚天",
    "洞庭",
    "巴陵",
    "南湖",
    "汇丰源",
    "一品",
    "家家乐",
    "优品",
    "聚福",
    "华联",
    "步步高",
    "天虹",
    "新一佳",
    "友阿",
];

/// USCC alphabet (GB 32100), for the organisation-code part.
const USCC_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// One merchant of the pool.
#[derive(Debug, Clone)]
pub(crate) struct MerchantInfo {
    pub(crate) merchant: Merchant,
    /// Index into [`CATEGORIES`].
    pub(crate) category: usize,
    /// Index of its county.
    pub(crate) county: usize,
}

/// The merchants of the region.
pub(crate) struct MerchantPool {
    pub(crate) all: Vec<MerchantInfo>,
    /// Merchant indices per category (same order as [`CATEGORIES`]).
    by_category: Vec<Vec<u32>>,
}

impl MerchantPool {
    /// A pool of about one merchant per 15 persons (at least 60, at most 200,000).
    pub(crate) fn new(rng: &mut ChaCha8Rng, regions: &Regions, people: usize) -> MerchantPool {
        let size = (people / 15).clamp(60, 200_000);
        let total_weight: u32 = CATEGORIES.iter().map(|c| c.weight).sum();
        let mut all = Vec::with_capacity(size);
        let mut by_category = vec![Vec::new(); CATEGORIES.len()];
        let mut codes = BTreeSet::new();
        for i in 0..size {
            // The first merchants cover every category once, so no category is empty.
            let category = if i < CATEGORIES.len() {
                i
            } else {
                let mut w = rng.random_range(0..total_weight);
                CATEGORIES
                    .iter()
                    .position(|c| {
                        if w < c.weight {
                            true
                        } else {
                            w -= c.weight;
                            false
                        }
                    })
                    .unwrap_or(0)
            };
            let county = rng.random_range(0..regions.counties.len());
            let company = rng.random_bool(0.55);
            let uscc = loop {
                let code = uscc(rng, &regions.counties[county].code, company);
                if codes.insert(code.clone()) {
                    break code;
                }
            };
            let c = &CATEGORIES[category];
            let brand = BRANDS[rng.random_range(0..BRANDS.len())];
            let shop = c.shops[rng.random_range(0..c.shops.len())];
            let county_name = &regions.counties[county].name;
            let name = if company && !shop.ends_with("公司") {
                format!("{}{county_name}{brand}{shop}有限公司", regions.city)
            } else if company {
                format!("{}{county_name}{brand}{shop}", regions.city)
            } else {
                format!("{county_name}{brand}{shop}")
            };
            by_category[category].push(u32::try_from(i).unwrap_or(u32::MAX));
            all.push(MerchantInfo {
                merchant: Merchant {
                    name,
                    uscc,
                    category: c.category as i32,
                },
                category,
                county,
            });
        }
        MerchantPool { all, by_category }
    }

    /// Any merchant, the big ones (low indices) likelier: where ordinary people shop.
    pub(crate) fn popular(&self, rng: &mut ChaCha8Rng) -> usize {
        let u: f64 = rng.random();
        ((u * u * self.all.len() as f64) as usize).min(self.all.len() - 1)
    }

    /// A merchant of one of the categories, uniformly.
    pub(crate) fn of_categories(
        &self,
        rng: &mut ChaCha8Rng,
        categories: &[GoodsCategory],
    ) -> usize {
        let lists: Vec<&Vec<u32>> = CATEGORIES
            .iter()
            .zip(&self.by_category)
            .filter(|(c, _)| categories.contains(&c.category))
            .map(|(_, list)| list)
            .collect();
        let total: usize = lists.iter().map(|l| l.len()).sum();
        if total == 0 {
            return self.popular(rng);
        }
        let mut i = rng.random_range(0..total);
        for list in lists {
            if i < list.len() {
                return list[i] as usize;
            }
            i -= list.len();
        }
        self.popular(rng)
    }

    /// Another merchant of the same category as `merchant` (possibly itself when it is the only one).
    pub(crate) fn same_category(&self, rng: &mut ChaCha8Rng, merchant: usize) -> usize {
        let list = &self.by_category[self.all[merchant].category];
        list[rng.random_range(0..list.len())] as usize
    }
}

/// A Unified Social Credit Code: registration authority 9 (market regulation), type 1 (enterprise) or 2 (individual
/// business), the county, nine organisation-code characters and the GB 32100 check character.
fn uscc(rng: &mut ChaCha8Rng, county: &str, company: bool) -> String {
    let mut first17 = String::with_capacity(18);
    first17.push('9');
    first17.push(if company { '1' } else { '2' });
    first17.push_str(county);
    for _ in 0..9 {
        first17.push(char::from(
            USCC_ALPHABET[rng.random_range(0..USCC_ALPHABET.len())],
        ));
    }
    let check = uscc_check_char(&first17).expect("17 characters of the alphabet by construction");
    first17.push(check);
    first17
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use caselink_domain::validate_uscc;
    use rand::SeedableRng;

    #[test]
    fn merchants_have_valid_unique_usccs_in_the_region() {
        let regions = Regions::for_prefix("4306");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pool = MerchantPool::new(&mut rng, &regions, 30_000);
        assert_eq!(pool.all.len(), 2_000);
        let mut seen = BTreeSet::new();
        for m in &pool.all {
            validate_uscc(&m.merchant.uscc).unwrap();
            assert!(m.merchant.uscc[2..].starts_with("4306"));
            assert!(seen.insert(m.merchant.uscc.clone()));
            assert_eq!(m.merchant.category, CATEGORIES[m.category].category as i32);
        }
        for (i, list) in pool.by_category.iter().enumerate() {
            assert!(!list.is_empty(), "{:?}", CATEGORIES[i].category);
        }
    }
}
