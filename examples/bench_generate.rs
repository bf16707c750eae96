//! Writes a synthetic COPS-like source of N rows (default 5,000,000) to a CSV file:
//! `Row ID,Code,Occupation Name,Year,Value` with a BOM, stray header spaces, codes with leading
//! zeros, about 3% aggregate rows (TEER_n) and about 0.1% values that are not numbers.

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "bench/out/source/synthetic.csv".into());
    let rows: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5_000_000);
    if let Some(dir) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    out.write_all("\u{feff}Row ID,Code ,Occupation Name, Year,Value\n".as_bytes())?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let code = if state % 33 == 0 { format!("TEER_{}", state % 6) } else { format!("{:05}", state % 100_000) };
        let year = 2023 + (i % 11);
        let value = if state % 1000 == 7 { "N/A".to_string() } else { format!("{}.{}", state % 100_000, state % 10) };
        writeln!(out, "{i},{code}, Occupation {} ,{year},{value}", state % 517)?;
    }
    out.flush()
}
