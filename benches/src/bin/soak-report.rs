//! `soak-report DIR`: reads DIR/rss.csv (benches/soak.sh's samples of the
//! server) and DIR/latency.csv (`percore-bench soak`'s rows), writes
//! DIR/summary.txt, DIR/summary.json and DIR/soak.svg, and prints the
//! summary. Exit status 1 when the pair lost messages, 2 on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use percore_benches::soak::{plot, row, summary};

#[derive(Parser, Debug)]
#[command(name = "soak-report", about = "Summary and SVG plot of a soak run")]
struct Args {
    /// The soak's output directory.
    dir: PathBuf,
    /// Seconds from the start not counted in the RSS and drift figures
    /// (default: 10 % of the run, at most 300).
    #[arg(long)]
    warmup: Option<f64>,
    /// The plot's title.
    #[arg(long, default_value = "soak")]
    title: String,
}

fn run(a: &Args) -> Result<summary::Summary, String> {
    let read = |name: &str| {
        let p = a.dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let write = |name: &str, text: &str| {
        let p = a.dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    let rows = row::parse_csv(&read("latency.csv")?)?;
    let rss = summary::parse_rss_csv(&read("rss.csv")?)?;
    let duration = rows.last().map_or(0.0, |r| r.t_end_s);
    let warmup = a
        .warmup
        .unwrap_or_else(|| summary::default_warmup_s(duration));
    let s = summary::summarize(&rows, &rss, warmup);
    write("summary.txt", &s.text())?;
    let json = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
    write("summary.json", &(json + "\n"))?;
    write("soak.svg", &plot::render(&a.title, &rss, &rows, warmup)?)?;
    Ok(s)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(s) => {
            print!("{}", s.text());
            println!(
                "wrote summary.txt, summary.json, soak.svg in {}",
                args.dir.display()
            );
            if s.lost > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("soak-report: {e}");
            ExitCode::from(2)
        }
    }
}
