//! `caselink-justice`: the justice department's ingest service (default 127.0.0.1:50053).

fn main() -> std::process::ExitCode {
    caselink_ingest::main_for(caselink_justice::Justice)
}
