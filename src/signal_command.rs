//! `--signal <command>[=<pid or pid file>]`: signals a running server and
//! exits, as nats-server's flag does, so that `percore --signal ldm=<pid>`
//! (test harnesses, init scripts, logrotate) keeps working after a swap.
//!
//! Without a pid, the one other process with this program's name is the
//! target ("no ... processes running" or "multiple ... processes running"
//! otherwise). A value after `=` that names a readable file is read as a pid
//! file.

use std::path::Path;

/// What a command does to the target process.
fn signal_for(command: &str) -> Option<libc::c_int> {
    Some(match command {
        "stop" => libc::SIGKILL,
        "quit" => libc::SIGINT,
        "reopen" => libc::SIGUSR1,
        "reload" => libc::SIGHUP,
        "ldm" => libc::SIGUSR2,
        "term" => libc::SIGTERM,
        _ => return None,
    })
}

/// Sends the signal `spec` asks for; the error is the line to print.
pub fn run(spec: &str) -> Result<(), String> {
    let parts: Vec<&str> = spec.split('=').collect();
    let (command, target) = match parts.as_slice() {
        [command] => (*command, None),
        [command, target] => (*command, Some(*target)),
        [_, _, rest @ ..] => {
            return Err(format!("invalid signal parameters: [{}]", rest.join(" ")))
        }
        [] => return Err("invalid signal parameters: []".to_string()),
    };
    let pid = match target {
        Some(target) => parse_pid(&read_pid_file_or(target))?,
        None => find_the_other_process()?,
    };
    let signal = signal_for(command).ok_or_else(|| format!("unknown signal {command:?}"))?;
    // SAFETY: kill(2) with a pid and a signal number; no memory involved.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(errno_text(&std::io::Error::last_os_error()))
    }
}

/// `no such process`, as Go prints an errno (without Rust's "(os error 3)").
fn errno_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The contents of the file `target` names, if it can be read; else `target`.
fn read_pid_file_or(target: &str) -> String {
    std::fs::read_to_string(target).unwrap_or_else(|_| target.to_string())
}

fn parse_pid(text: &str) -> Result<libc::pid_t, String> {
    // A pid file may end with a newline; nats-server's own has none.
    text.trim_end()
        .parse::<libc::pid_t>()
        .ok()
        .filter(|&pid| pid > 0)
        .ok_or_else(|| format!("invalid pid: {text}"))
}

/// The one running process, other than this one, with this program's name.
fn find_the_other_process() -> Result<libc::pid_t, String> {
    let name = process_name(Path::new("/proc/self/comm"))
        .ok_or_else(|| "unable to resolve pid, try providing one".to_string())?;
    let me = std::process::id() as libc::pid_t;
    let entries = std::fs::read_dir("/proc")
        .map_err(|_| "unable to resolve pid, try providing one".to_string())?;
    let mut pids: Vec<libc::pid_t> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            process_name(&Path::new("/proc").join(pid.to_string()).join("comm"))
                == Some(name.clone())
        })
        .collect();
    pids.sort_unstable();
    match pids.as_slice() {
        [] => Err(format!("no {name} processes running")),
        [pid] => Ok(*pid),
        many => Err(format!(
            "multiple {name} processes running:\n{}",
            many.iter()
                .map(|pid| pid.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

fn process_name(comm: &Path) -> Option<String> {
    std::fs::read_to_string(comm)
        .ok()
        .map(|name| name.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_nats_server_signals() {
        assert_eq!(signal_for("ldm"), Some(libc::SIGUSR2));
        assert_eq!(signal_for("quit"), Some(libc::SIGINT));
        assert_eq!(signal_for("term"), Some(libc::SIGTERM));
        assert_eq!(signal_for("stop"), Some(libc::SIGKILL));
        assert_eq!(signal_for("reopen"), Some(libc::SIGUSR1));
        assert_eq!(signal_for("reload"), Some(libc::SIGHUP));
        assert_eq!(signal_for("LDM"), None);
    }

    #[test]
    fn bad_parameters_are_reported_like_nats_server() {
        assert_eq!(
            run("quit=1=2=3"),
            Err("invalid signal parameters: [2 3]".into())
        );
        assert_eq!(run("quit=abc"), Err("invalid pid: abc".into()));
        assert_eq!(run("quit=0"), Err("invalid pid: 0".into()));
        // The pid is checked before the command, as nats-server does.
        assert_eq!(run("bogus=1"), Err("unknown signal \"bogus\"".into()));
    }

    #[test]
    fn a_missing_process_is_reported_as_go_does() {
        let error = std::io::Error::from_raw_os_error(libc::ESRCH);
        assert_eq!(errno_text(&error), "no such process");
    }

    #[test]
    fn pid_files_are_read() {
        let path = std::env::temp_dir().join(format!("percore-signal-test-{}", std::process::id()));
        std::fs::write(&path, "4242\n").expect("write pid file");
        let text = read_pid_file_or(&path.display().to_string());
        assert_eq!(parse_pid(&text), Ok(4242));
        let _ = std::fs::remove_file(&path);
        assert_eq!(read_pid_file_or("77"), "77");
    }
}
