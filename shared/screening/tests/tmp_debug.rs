#![allow(clippy::unwrap_used)]
mod support;
use caselink_screening::{RuleSet, Screener, RelationKey, ContactKind};
use std::collections::BTreeMap;

#[test]
fn debug_relations() {
    let (per, truth) = support::population(1, 3000, 0.05);
    let events = support::interleave(&per);
    let store = support::run(&Screener::new(RuleSet::default()), &events);
    let mut info = BTreeMap::new();
    for p in &truth.persons {
        info.insert(support::person_hex(&p.id_number), format!("{:?} {:?} {:?} imp={}", p.label, p.criteria, p.ring, p.impersonated_by.is_some()));
    }
    for (k, r) in &store.relations {
        if r.persons.len() < 2 { continue; }
        if let RelationKey::Text(_) = k { continue; }
        let kind = if matches!(k, RelationKey::Phone(_)) { ContactKind::Phone } else { ContactKind::Address };
        let ks = match k { RelationKey::Phone(s) | RelationKey::Address(s) | RelationKey::Text(s) => s.clone() };
        println!("REL {}", k.label());
        for h in &r.persons {
            let pk = caselink_domain::PersonKey::from_hex(h).unwrap();
            let ps = store.get(&pk).unwrap();
            let with = ps.contacts.iter().find(|c| c.kind == kind as i32 && c.key == ks).map_or(0, |c| c.records);
            let total = if kind == ContactKind::Phone { ps.phone_records } else { ps.address_records };
            let flags: Vec<_> = ps.flags.iter().filter(|f| f.active).map(|f| f.rule.clone()).collect();
            println!("   {:>4}/{:<4} {:>3}% flags={:?} {}", with, total, with*100/total.max(1), flags, info.get(h).cloned().unwrap_or_default());
        }
    }
}
