//! Generates a population and reports the speed: `cargo run --release -p caselink-population --example generate --
//! OUT_DIR [PEOPLE] [SEED]`.

use std::path::PathBuf;
use std::time::Instant;

use caselink_population::{generate, GenParams, DEPARTMENT_FILES};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: generate OUT_DIR [PEOPLE] [SEED]")?,
    );
    let people = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let seed = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let params = GenParams {
        seed,
        people,
        ..GenParams::default()
    };
    let started = Instant::now();
    let summary = generate(&params, &out, &mut |_| {})?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} events for {} persons ({} abusive, {} rings, {} hired clusters) in {secs:.2} s: {:.0} events/s",
        summary.events,
        summary.persons,
        summary.abusers,
        summary.rings,
        summary.hired_clusters,
        summary.events as f64 / secs
    );
    for (i, (department, _)) in DEPARTMENT_FILES.iter().enumerate() {
        println!("  {department:<9} {}", summary.by_department[i]);
    }
    Ok(())
}
