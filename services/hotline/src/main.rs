//! `caselink-hotline`: the hotline department's ingest service (default 127.0.0.1:50056).

fn main() -> std::process::ExitCode {
    caselink_ingest::main_for(caselink_hotline::Hotline)
}
