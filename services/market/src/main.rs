//! `caselink-market`: the market department's ingest service (default 127.0.0.1:50051).

fn main() -> std::process::ExitCode {
    caselink_ingest::main_for(caselink_market::Market)
}
