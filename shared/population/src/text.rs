//! The free text departments write: complaint and report summaries, hotline ticket texts, decision details.
//!
//! Ordinary people's texts are put together from many varied parts and carry their own details, so two strangers
//! complaining about the same shop do not read alike; a professional claimant writes in legal boilerplate of their own;
//! a collusion ring shares one near-identical text (clause 二(四)). No text carries an ID number, name or phone.

use caselink_proto::v1::{ClaimType, ViolationType};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::calendar::chinese_date;

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// Yuan from fen, without needless decimals: `35`, `35.5`, `35.25`.
pub(crate) fn yuan(fen: i64) -> String {
    let (y, f) = (fen / 100, fen % 100);
    if f == 0 {
        format!("{y}")
    } else if f % 10 == 0 {
        format!("{y}.{}", f / 10)
    } else {
        format!("{y}.{f:02}")
    }
}

/// What was bought, for the texts.
pub(crate) struct Bought<'a> {
    pub(crate) merchant: &'a str,
    pub(crate) goods: &'a str,
    pub(crate) unit: &'a str,
    pub(crate) quantity: i32,
    pub(crate) amount_fen: i64,
    pub(crate) purchased_at: i64,
    pub(crate) problem: &'a str,
}

fn demand(rng: &mut ChaCha8Rng, claim: ClaimType) -> &'static str {
    match claim {
        ClaimType::Refund => pick(
            rng,
            &[
                "要求退货退款",
                "希望商家退款",
                "要求全额退款",
                "要求商家退钱",
            ],
        ),
        ClaimType::Replacement => pick(rng, &["要求更换", "要求商家换货", "希望换一个新的"]),
        ClaimType::Repair => pick(rng, &["要求免费维修", "要求商家负责修好"]),
        ClaimType::Compensation => pick(rng, &["要求赔偿损失", "要求商家赔偿", "希望得到合理赔偿"]),
        ClaimType::Punitive10x => pick(rng, &["要求退一赔十", "要求按食品安全法赔偿"]),
        ClaimType::Punitive3x => pick(rng, &["要求退一赔三", "要求三倍赔偿"]),
        _ => pick(rng, &["希望市场监管部门处理", "请求帮助解决"]),
    }
}

/// An ordinary consumer's complaint, in their own words as the clerk noted them.
pub(crate) fn ordinary_complaint(rng: &mut ChaCha8Rng, b: &Bought<'_>, claim: ClaimType) -> String {
    let opening = pick(
        rng,
        &[
            "投诉人称：",
            "消费者反映：",
            "投诉人反映，",
            "来电人称，",
            "",
            "消费者来电反映：",
        ],
    );
    let when = if rng.random_bool(0.6) {
        chinese_date(b.purchased_at)
    } else {
        pick(rng, &["前几天", "上周", "近日", "本月初"]).to_owned()
    };
    let paid = if rng.random_bool(0.7) {
        format!("，花了{}元", yuan(b.amount_fen))
    } else {
        String::new()
    };
    let how = pick(
        rng,
        &[
            "",
            "，与商家协商未果",
            "，找商家理论被推诿",
            "，商家态度很差",
            "，多次联系商家无人处理",
            "，商家只同意部分退款",
            "，商家称不归他们管",
        ],
    );
    let tail = pick(rng, &["。", "，请帮忙处理。", "，望尽快解决。", "。"]);
    format!(
        "{opening}{when}在{}购买{}{}{}{paid}，{}{how}，{}{tail}",
        b.merchant,
        b.goods,
        b.quantity,
        b.unit,
        b.problem,
        demand(rng, claim)
    )
}

/// A professional claimant's complaint: legal boilerplate in a personal style (64 of them: template, wording of the
/// law, closing), so one claimant's complaints read alike and two claimants' do not.
pub(crate) fn claimant_complaint(style: u8, b: &Bought<'_>, claim: ClaimType) -> String {
    let law = match (claim == ClaimType::Punitive10x, (style / 4) % 4) {
        (true, 0) => {
            "依据《中华人民共和国食品安全法》第一百四十八条，要求经营者退还货款并支付价款十倍赔偿金"
        }
        (true, 1) => "根据《食品安全法》第一百四十八条第二款，请求判令经营者退一赔十",
        (true, 2) => {
            "经营者明知是不符合食品安全标准的食品而销售，应依法承担价款十倍的惩罚性赔偿责任"
        }
        (true, _) => "按照食品安全法相关规定，要求退货并十倍赔偿，赔偿不足一千元的按一千元计",
        (false, 0) => {
            "依据《中华人民共和国消费者权益保护法》第五十五条，要求经营者退还货款并支付价款三倍赔偿"
        }
        (false, 1) => "经营者行为构成欺诈，根据《消费者权益保护法》第五十五条第一款要求退一赔三",
        (false, 2) => "请求责令经营者承担欺诈责任，按价款三倍赔偿，不足五百元的按五百元计",
        (false, _) => "要求经营者依法承担三倍惩罚性赔偿责任",
    };
    let closing = match (style / 16) % 4 {
        0 => "并请求依法查处",
        1 => "请在法定期限内书面答复处理结果",
        2 => "如不予处理将依法申请政府信息公开及行政复议",
        _ => "同时请求对经营者的违法行为立案调查并告知结果",
    };
    let date = chinese_date(b.purchased_at);
    let amount = yuan(b.amount_fen);
    match style % 4 {
        0 => format!(
            "投诉人于{date}在{}购买{}{}{}，金额{amount}元。经查该商品{}，{law}，{closing}。",
            b.merchant, b.goods, b.quantity, b.unit, b.problem
        ),
        1 => format!(
            "本人{date}在被投诉人{}处购买{}共{}{}（{amount}元），发现{}。{law}，{closing}。",
            b.merchant, b.goods, b.quantity, b.unit, b.problem
        ),
        2 => format!(
            "{date}，投诉人在{}消费{amount}元购买{}{}{}，该商品{}，严重侵害消费者合法权益。{law}，{closing}。",
            b.merchant, b.quantity, b.unit, b.goods, b.problem
        ),
        _ => format!(
            "被投诉人{}销售的{}{}（数量{}{}，价款{amount}元，购于{date}）。{law}，{closing}。",
            b.merchant, b.goods, b.problem, b.quantity, b.unit
        ),
    }
}

/// The text a collusion ring's members all file for one campaign (near-identical on purpose).
pub(crate) fn ring_complaint(b: &Bought<'_>) -> String {
    format!(
        "本人近日在{}购买{}，发现{}，商家的行为严重侵害了消费者的合法权益，现要求商家按照法律规定给予十倍赔偿，并请求市场监管部门依法查处。",
        b.merchant, b.goods, b.problem
    )
}

pub(crate) fn violation_name(v: ViolationType) -> &'static str {
    match v {
        ViolationType::Expired => "销售超过保质期食品",
        ViolationType::Labelling => "标签标识不符合规定",
        ViolationType::NoChineseLabel => "销售无中文标签进口商品",
        ViolationType::FalseAdvertising => "虚假宣传",
        ViolationType::Unlicensed => "无证经营",
        ViolationType::Quality => "销售不合格产品",
        ViolationType::Price => "价格违法",
        ViolationType::FoodSafety => "违反食品安全规定",
        _ => "其他违法行为",
    }
}

/// A report (举报) of a violation.
pub(crate) fn report(
    rng: &mut ChaCha8Rng,
    merchant: &str,
    goods: &str,
    violation: ViolationType,
    reward: bool,
) -> String {
    let opening = pick(rng, &["举报人反映：", "实名举报：", "举报人称，"]);
    let reward = if reward {
        "，并按规定给予举报奖励"
    } else {
        ""
    };
    format!(
        "{opening}{merchant}销售的{goods}涉嫌{}，请依法查处{reward}。",
        violation_name(violation)
    )
}

/// What a 12345 operator writes on a consumer ticket.
pub(crate) fn ticket(rng: &mut ChaCha8Rng, merchant: &str, goods: &str, problem: &str) -> String {
    let opening = pick(
        rng,
        &["市民来电反映：", "市民反映：", "来电人反映，", "网友留言："],
    );
    let ask = pick(
        rng,
        &[
            "请相关部门核实处理。",
            "希望尽快处理。",
            "要求商家退款，请协调。",
            "已向12315投诉但迟迟没有结果，请督办。",
        ],
    );
    format!("{opening}在{merchant}购买的{goods}{problem}，{ask}")
}

pub(crate) fn rejection_detail(
    reason: caselink_proto::v1::ComplaintRejectionReason,
) -> &'static str {
    use caselink_proto::v1::ComplaintRejectionReason as R;
    match reason {
        R::NoJurisdiction => "被投诉人不在本局管辖范围，已告知投诉人向有管辖权的部门投诉",
        R::NoEvidence => "投诉人未能提供购物凭证等证明材料",
        R::Duplicate => "同一投诉已在处理中，不重复受理",
        R::AlreadyInLitigation => "该消费纠纷已由人民法院受理",
        R::NotForLivingConsumption => {
            "经综合判断，投诉人购买商品不属于为生活消费需要，依据《市场监督管理投诉举报处理暂行办法》第十五条不予受理"
        }
        R::OnAbnormalList => "投诉人已列入投诉举报异常名录",
        _ => "不符合受理条件",
    }
}
