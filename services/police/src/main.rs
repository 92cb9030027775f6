//! `caselink-police`: the police department's ingest service (default 127.0.0.1:50052).

fn main() -> std::process::ExitCode {
    caselink_ingest::main_for(caselink_police::Police)
}
