//! `tandem-server`: flags, configuration file, start-up, signals and shutdown. Nothing else.
//!
//! Usage is redis-server's: `tandem-server [/path/to/redis.conf] [--name value ...]`. The file
//! and the flags are joined into one configuration text (flags last, so they win), and any
//! unknown or invalid setting stops start-up with the line it is on.

use server::config::Config;

/// jemalloc, as Redis uses: low per-allocation overhead for many small keys, and exact
/// allocation statistics for `INFO memory`.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use std::io::Read;

const USAGE: &str = "Usage: ./tandem-server [/path/to/redis.conf] [options] [-]
       ./tandem-server - (read config from stdin)
       ./tandem-server -v or --version
       ./tandem-server -h or --help

Examples:
       ./tandem-server (run the server with default config)
       ./tandem-server /etc/redis/6379.conf
       ./tandem-server --port 7777
       ./tandem-server /etc/myredis.conf --loglevel verbose -
";

/// Builds the configuration text from the command line, as redis-server does.
fn config_text(args: &[String]) -> Result<(String, String), String> {
    let mut text = String::new();
    let mut file = String::new();
    let mut i = 0;
    if let Some(first) = args.first() {
        if !first.starts_with("--") {
            if first == "-" {
                std::io::stdin().read_to_string(&mut text).map_err(|e| format!("reading stdin: {e}"))?;
            } else {
                text = std::fs::read_to_string(first)
                    .map_err(|e| format!("Fatal error, can't open config file '{first}': {e}"))?;
                file = std::fs::canonicalize(first).map(|p| p.display().to_string()).unwrap_or_else(|_| first.clone());
            }
            i = 1;
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut line = String::new();
    while i < args.len() {
        let a = &args[i];
        if let Some(name) = a.strip_prefix("--") {
            if !line.is_empty() {
                text.push_str(&line);
                text.push('\n');
            }
            line = name.to_string();
        } else if a == "-" && i == args.len() - 1 {
            let mut stdin = String::new();
            std::io::stdin().read_to_string(&mut stdin).map_err(|e| format!("reading stdin: {e}"))?;
            text.push_str(&stdin);
            text.push('\n');
        } else {
            if line.is_empty() {
                return Err(format!("Invalid argument '{a}': options start with --"));
            }
            line.push(' ');
            line.push_str(&quote(a));
        }
        i += 1;
    }
    if !line.is_empty() {
        text.push_str(&line);
        text.push('\n');
    }
    Ok((text, file))
}

/// Quotes a flag value so that the configuration tokenizer reads it back as one word.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return v.to_string();
    }
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn init_logging(config: &Config) {
    let level = match config.get("loglevel").as_str() {
        "debug" => tracing::Level::DEBUG,
        "verbose" => tracing::Level::INFO,
        "notice" => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // openraft narrates every election, snapshot and membership change at INFO; our own lines
    // say what an operator needs, so its narration shows only at `loglevel debug`.
    let raft_level = if level == tracing::Level::DEBUG { tracing::Level::INFO } else { tracing::Level::WARN };
    let filter = tracing_subscriber::filter::Targets::new().with_default(level).with_target("openraft", raft_level);
    let logfile = config.get("logfile");
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false);
    if logfile.is_empty() {
        builder.with_writer(std::io::stderr).finish().with(filter).init();
    } else {
        match std::fs::OpenOptions::new().create(true).append(true).open(&logfile) {
            Ok(f) => builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).finish().with(filter).init(),
            Err(e) => {
                eprintln!("Can't open the log file: {e}");
                std::process::exit(1);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 1 && (args[0] == "-v" || args[0] == "--version") {
        println!("Tandem server v={} (Redis compatible v=7.2.4) bits=64", env!("CARGO_PKG_VERSION"));
        return;
    }
    if args.len() == 1 && (args[0] == "-h" || args[0] == "--help") {
        print!("{USAGE}");
        return;
    }
    let (text, file) = match config_text(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let config = Config::new();
    if let Err(e) = config.load_text(&text) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    init_logging(&config);
    let workers = match config.get_i64("worker-threads") {
        // Auto: one thread per core but one, leaving a core to the clients and the kernel's
        // network work (Redis gives the same advice for io-threads). Measured on 2 cores with
        // the load generator beside the server: 1 thread beats Redis at -P 1 and -P 16, while 2
        // threads win -P 16 by more but lose -P 1 to oversubscription.
        0 => std::thread::available_parallelism().map(|n| n.get().saturating_sub(1).max(1)).unwrap_or(1),
        n => n as usize,
    };
    // This thread accepts and serves connections too; see server::listener::Workers.
    let rt = server::turn::runtime().expect("tokio runtime");
    rt.block_on(async move {
        let server = match server::Server::bind(config, file).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                std::process::exit(1);
            }
        };
        let shared = server.shared.clone();
        tracing::info!(
            "Tandem {} ready to accept connections tcp on {}",
            env!("CARGO_PKG_VERSION"),
            server.local_addr()
        );
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        let run = server.run(workers);
        tokio::pin!(run);
        loop {
            tokio::select! {
                _ = &mut run => break,
                _ = term.recv() => tracing::warn!("Received SIGTERM scheduling shutdown..."),
                _ = tokio::signal::ctrl_c() => tracing::warn!("Received SIGINT scheduling shutdown..."),
            }
            // As Redis: save if save points are configured; if that fails, keep serving.
            let s = shared.clone();
            match tokio::task::spawn_blocking(move || s.save_before_exit(None)).await {
                Ok(Ok(())) => break,
                _ => tracing::warn!(
                    "SIGTERM received but errors trying to shut down the server, check the logs for more information"
                ),
            }
        }
        shared.leave_cluster().await;
        shared.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!("Tandem is now ready to exit, bye bye...");
    });
    // Connections still open are dropped with the runtime.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(0);
}
