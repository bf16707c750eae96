//! `jobforge sources`: fingerprints and change detection; `sources pull` from a local HTTP
//! server the test starts, with and without a matching SHA-256.

use crate::common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;

fn status(p: &Project) -> Vec<Value> {
    let out = p.jobforge(&["sources", "--format", "json"]);
    ok(&out);
    serde_json::from_str::<Value>(&stdout(&out)).unwrap().as_array().unwrap().clone()
}

fn find<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("no source {id}"))
}

#[test]
fn sources_lists_files_and_what_changed_since_the_last_run() {
    let p = Project::sample();
    let rows = status(&p);
    assert_eq!(rows.len(), yaml_len("sources.yml", "sources"));
    let noc = find(&rows, "noc_structure");
    assert_eq!(noc["status"], "new");
    let bytes = std::fs::read(p.file("data/source/noc/noc_structure_en.sample.csv")).unwrap();
    assert_eq!(noc["file"]["size"], bytes.len() as u64);
    assert_eq!(noc["file"]["sha256"].as_str().unwrap().len(), 64);
    ok(&p.jobforge(&["run", "pipelines"]));
    assert!(status(&p).iter().all(|r| r["status"] == "unchanged"), "{:?}", status(&p));
    p.write("data/source/noc/noc_structure_en.sample.csv", &format!("{}\n", String::from_utf8(bytes).unwrap()));
    let rows = status(&p);
    assert_eq!(find(&rows, "noc_structure")["status"], "changed");
    assert_eq!(find(&rows, "oasis_skills")["status"], "unchanged");
    let text = stdout(&p.jobforge(&["sources"]));
    assert!(text.lines().any(|l| l.starts_with("noc_structure") && l.contains("changed")), "{text}");
}

/// Serves `body` over HTTP/1.1 for every request until the test ends; returns the base URL.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn pull_downloads_atomically_and_checks_the_sha256() {
    let p = Project::sample();
    let body = b"noc,noc_title,onet,onet_title\n10,Legislators,11-1031.00,Legislators\n".to_vec();
    let url = serve(body.clone());
    let sha = "5c1aa6e8a3c4b5a7d6f4f38a2e8a2f6b0f4b3f0b7b1c2f9e5d1a0c9b8a7f6e5d";
    let original = std::fs::read(p.file("data/source/noc/noc2021_onet26.sample.csv")).unwrap();
    p.edit(
        "sources.yml",
        "    pattern: [\"noc/noc2021_onet26*.csv\"]\n",
        &format!(
            "    pattern: [\"noc/noc2021_onet26*.csv\"]\n    url: {url}/noc2021_onet26.sample.csv\n    sha256: {sha}\n"
        ),
    );
    let out = p.jobforge(&["sources", "pull"]);
    assert_eq!(out.status.code(), Some(1), "a wrong SHA-256 fails the pull");
    assert!(stdout(&out).contains("FAILED noc_onet") && stdout(&out).contains("SHA-256 mismatch"), "{}", stdout(&out));
    assert_eq!(
        std::fs::read(p.file("data/source/noc/noc2021_onet26.sample.csv")).unwrap(),
        original,
        "nothing written on mismatch"
    );
    let real_sha = stdout(&out).split("got ").nth(1).unwrap()[..64].to_string();
    p.edit("sources.yml", sha, &real_sha);
    let out = p.jobforge(&["sources", "pull", "noc_onet"]);
    ok(&out);
    assert!(stdout(&out).contains(&format!("pulled noc_onet: {url}/noc2021_onet26.sample.csv")), "{}", stdout(&out));
    assert_eq!(std::fs::read(p.file("data/source/noc/noc2021_onet26.sample.csv")).unwrap(), body);
    let leftovers: Vec<_> = std::fs::read_dir(p.file("data/source/noc"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    let out = p.jobforge(&["sources", "pull", "noc_onett"]);
    assert!(stderr(&out).contains("did you mean `noc_onet`?"), "{}", stderr(&out));
}
