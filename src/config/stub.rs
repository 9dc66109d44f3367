// TEMPORARY until the real command line parser lands.
use super::Options;
pub enum Invocation {
    Run(Options),
    Exit {
        stdout: String,
        stderr: String,
        code: i32,
    },
}
#[derive(Debug)]
pub struct ConfigError(pub String);
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
pub fn parse_invocation(args: Vec<String>) -> Result<Invocation, ConfigError> {
    let mut o = Options::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-p" | "--port" => o.port = it.next().and_then(|v| v.parse().ok()).unwrap_or(4222),
            "-a" | "--addr" => o.host = it.next().unwrap_or_default(),
            "--shards" => o.shards = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "-DV" => {
                o.debug = true;
                o.trace = true;
            }
            _ => return Err(ConfigError(format!("unknown flag {a}"))),
        }
    }
    Ok(Invocation::Run(o))
}
