//! `caselink-petition`: the petition department's ingest service (default 127.0.0.1:50055).

fn main() -> std::process::ExitCode {
    caselink_ingest::main_for(caselink_petition::Petition)
}
