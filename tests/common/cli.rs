//! The one way the tests run the `dialtone` binary: in a data directory of its own and,
//! on PostgreSQL runs, against a fresh database, as an operator would from a shell.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use super::{eml_files_in, fresh_database, wait_for_messages, Browser, Mail};

/// A data directory and (on PostgreSQL runs) a fresh database shared by one test's
/// commands.
pub struct Cli {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

impl Cli {
    pub async fn new() -> Cli {
        let database_url = fresh_database().await;
        Cli {
            dir: tempfile::tempdir().unwrap(),
            database_url,
        }
    }

    /// `dialtone` with this data directory (also its working directory) and database.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialtone"));
        cmd.env("DIALTONE_DATA_DIR", self.dir.path())
            .current_dir(self.dir.path());
        // The suites' own switches are not the portal's settings, and the portal refuses
        // a `DIALTONE_*` name it does not know.
        for switch in ["DIALTONE_CAMPAIGN_KILLS", "DIALTONE_FUZZ_CASES"] {
            cmd.env_remove(switch);
        }
        if let Some(url) = &self.database_url {
            cmd.env("DIALTONE_DATABASE_URL", url);
        }
        cmd
    }

    /// Runs `dialtone ARGS` to the end, with `stdin` typed in (or none), and returns what
    /// it printed and how it exited.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dialtone runs");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    /// Starts `dialtone demo` on a free port and reads what it prints up to the operators
    /// line.
    pub fn start_demo(&self) -> Demo {
        let port = super::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = self
            .command()
            .arg("demo")
            .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
            .env("DIALTONE_PUBLIC_URL", &base)
            .env("DIALTONE_MAIL_POLL", "100ms")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut output = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let last = line.starts_with("Operators:");
            output.push(line);
            if last {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Demo {
            child,
            base,
            output,
        }
    }

    /// Waits (bounded) until at least `n` mail files are in the data directory's mail
    /// folder, and returns them parsed.
    pub async fn wait_for_mail(&self, n: usize) -> Vec<Mail> {
        let dir = self.dir.path().join("mail");
        wait_for_messages(n, "mail files", || eml_files_in(&dir)).await
    }
}

/// What a process printed, as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `dialtone demo` process, killed when dropped.
pub struct Demo {
    child: Child,
    pub base: String,
    /// What it printed before serving, line by line.
    pub output: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// A browser on the demo, once it answers its health check.
    pub async fn browser(&self) -> Browser {
        let b = Browser::at(&self.base);
        let mut ready = false;
        for _ in 0..100 {
            if b.get("/healthz").await.status() == StatusCode::OK {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "the demo answers");
        b
    }
}
