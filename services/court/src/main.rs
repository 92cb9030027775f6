//! `caselink-court`: the court department's ingest service (default 127.0.0.1:50054).

fn main() -> std::process::ExitCode {
    caselink_ingest::main_for(caselink_court::Court)
}
