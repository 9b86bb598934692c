//! A day's journal of one group as CSV, with the group's hash chain, and
//! the offline check of such a file (`ctl journal export`,
//! `geowallet verify`).
//!
//! Columns: `group,log_index,time_ns,prev_chain,chain,` then the line's
//! canonical CSV (`geowallet_ledger::canonical_line`: seq, player,
//! currency, position, kind, amount, available, held, tx_id). Each row of
//! one Raft entry repeats the entry's fields; the entry's `chain` is
//! `SHA-256(prev_chain || "group,log_index,time_ns\n" || line "\n" ...)`
//! over its rows' canonical parts, and each entry's `prev_chain` is the
//! chain of the one before. After the lines come `total` rows: per
//! currency and kind, the sum of the amounts. An edited, removed, added or
//! reordered line breaks the chain; an edited total no longer matches the
//! lines. (Cutting whole entries off the end, or starting later, shows
//! against the chain values of the days around it, or `ctl status`.)

use std::collections::BTreeMap;
use std::io::Write;

use geowallet_client::{Client, Error, GroupEvents, Resume};
use geowallet_ledger::{LINE_COLUMNS, chain_next, entry_header, hex, parse_hex, quote_tx};

/// The export's header row.
pub fn header() -> String {
    let mut cols = vec!["group", "log_index", "time_ns", "prev_chain", "chain"];
    cols.extend(LINE_COLUMNS);
    cols.join(",")
}

const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// `[start, end)` in ns since the Unix epoch of the UTC day `YYYY-MM-DD`.
pub fn day_range(day: &str) -> Result<(u64, u64), String> {
    let bad = || format!("bad day {day:?}: write it as YYYY-MM-DD (UTC)");
    let parts: Vec<&str> = day.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=2500).contains(&y)
        || !(1..=12).contains(&m)
        || d == 0
        || d > days_in[m as usize - 1]
    {
        return Err(bad());
    }
    // Days since 1970-01-01 (civil calendar; the proleptic Gregorian rule).
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let start = days as u64 * NS_PER_DAY;
    Ok((start, start + NS_PER_DAY))
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub entries: u64,
    pub lines: u64,
    /// (first prev_chain, last chain) of the day, hex; `None` for a day
    /// without events.
    pub chain: Option<(String, String)>,
    /// The group's applied index the export read up to.
    pub until_index: u64,
}

/// Writes group `group`'s journal of the UTC `day` to `out`, reading its
/// change stream up to the index the group applied when the export began.
pub async fn export(
    client: &Client,
    endpoint: &str,
    group: u64,
    day: &str,
    out: &mut dyn Write,
) -> Result<Exported, Error> {
    let (start, end) = day_range(day).map_err(|message| Error::InvalidArgument { message })?;
    let status = client.status_of(endpoint).await?;
    let g = status
        .groups
        .iter()
        .find(|g| g.id == group || (group == 0 && g.id != 0))
        .ok_or_else(|| Error::InvalidArgument {
            message: format!("node {endpoint} does not host group {group}: name a group it hosts"),
        })?;
    let (group, until) = (g.id, g.applied_index);
    let io = |e: std::io::Error| Error::InvalidArgument {
        message: format!("write the export: {e}"),
    };
    writeln!(out, "{}", header()).map_err(io)?;
    let mut done = Exported {
        entries: 0,
        lines: 0,
        chain: None,
        until_index: until,
    };
    let mut totals: BTreeMap<(String, String), u128> = BTreeMap::new();
    if until > 0 {
        let mut stream = client.events(group, Resume::START, Some(until));
        while let Some(e) = stream.next().await {
            let e: GroupEvents = e?;
            if e.time_ns >= end {
                break;
            }
            if e.time_ns < start {
                continue;
            }
            done.entries += 1;
            let first = done
                .chain
                .as_ref()
                .map_or(hex(&e.prev_chain), |c| c.0.clone());
            done.chain = Some((first, hex(&e.chain)));
            for l in &e.lines {
                done.lines += 1;
                let canonical = canonical_from_parts(l);
                writeln!(
                    out,
                    "{},{},{},{},{},{canonical}",
                    e.group,
                    e.log_index,
                    e.time_ns,
                    hex(&e.prev_chain),
                    hex(&e.chain)
                )
                .map_err(io)?;
                *totals
                    .entry((l.account.currency.clone(), l.line.kind.clone()))
                    .or_default() += u128::from(l.line.amount);
            }
        }
    }
    for ((currency, kind), amount) in &totals {
        writeln!(out, "total,,,,,,,{currency},,{kind},{amount},,,").map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(done)
}

/// The canonical line of an event as the client received it: the same
/// text the ledger hashed (`geowallet_ledger::canonical_line`).
fn canonical_from_parts(l: &geowallet_client::EventLine) -> String {
    let b = &l.line.balance;
    format!(
        "{},{},{},{},{},{},{},{},{}",
        l.line.seq,
        l.account.player,
        l.account.currency,
        l.line.position,
        l.line.kind,
        l.line.amount,
        b.available,
        b.held,
        quote_tx(&l.line.tx_id)
    )
}

/// What a verified file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub lines: u64,
    /// (first prev_chain, last chain), hex; `None` for an empty day.
    pub chain: Option<(String, String)>,
}

/// Checks an exported file: every entry's chain recomputed from its rows,
/// each entry chained to the one before, and the totals equal to the sums
/// of the lines. Errors name the file's line numbers (from 1).
pub fn verify(text: &str) -> Result<Verified, Vec<String>> {
    let mut problems = Vec::new();
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h == header() => {}
        _ => {
            return Err(vec![format!(
                "line 1: not a journal export (header {:?} expected)",
                header()
            )]);
        }
    }
    struct Entry {
        at: usize,
        key: (String, String, String, String, String),
        rows: Vec<String>,
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut sums: BTreeMap<(String, String), u128> = BTreeMap::new();
    let mut totals: BTreeMap<(String, String), (usize, u128)> = BTreeMap::new();
    for (i, row) in lines {
        let n = i + 1;
        if let Some(rest) = row.strip_prefix("total,") {
            let f: Vec<&str> = rest.split(',').collect();
            // total,,,,,,,currency,,kind,amount,,,
            match (
                f.get(6),
                f.get(8),
                f.get(9).and_then(|a| a.parse::<u128>().ok()),
            ) {
                (Some(c), Some(k), Some(a)) if f.len() == 13 => {
                    if totals
                        .insert((c.to_string(), k.to_string()), (n, a))
                        .is_some()
                    {
                        problems.push(format!("line {n}: a second total for {c} {k}"));
                    }
                }
                _ => problems.push(format!("line {n}: malformed total row")),
            }
            continue;
        }
        if !totals.is_empty() {
            problems.push(format!("line {n}: a journal line after the totals"));
        }
        let f: Vec<&str> = row.splitn(6, ',').collect();
        let [group, index, time, prev, chain, canonical] = f[..] else {
            problems.push(format!("line {n}: malformed row"));
            continue;
        };
        let parts: Vec<&str> = canonical.splitn(9, ',').collect();
        let (Some(currency), Some(kind), Some(amount)) = (
            parts.get(2),
            parts.get(4),
            parts.get(5).and_then(|a| a.parse::<u128>().ok()),
        ) else {
            problems.push(format!("line {n}: malformed journal line"));
            continue;
        };
        if parts.len() != 9 {
            problems.push(format!("line {n}: malformed journal line"));
            continue;
        }
        *sums
            .entry((currency.to_string(), kind.to_string()))
            .or_default() += amount;
        let key = (
            group.to_string(),
            index.to_string(),
            time.to_string(),
            prev.to_string(),
            chain.to_string(),
        );
        match entries.last_mut() {
            Some(e) if e.key.0 == key.0 && e.key.1 == key.1 => {
                if e.key != key {
                    problems.push(format!(
                        "line {n}: entry {index}'s rows disagree on its time or chain"
                    ));
                }
                e.rows.push(canonical.to_string());
            }
            _ => entries.push(Entry {
                at: n,
                key,
                rows: vec![canonical.to_string()],
            }),
        }
    }
    let mut prev_chain: Option<String> = None;
    for e in &entries {
        let (group, index, time, prev, chain) = &e.key;
        let (Some(p), Some(c), Ok(g), Ok(i), Ok(t)) = (
            parse_hex(prev),
            parse_hex(chain),
            group.parse::<u64>(),
            index.parse::<u64>(),
            time.parse::<u64>(),
        ) else {
            problems.push(format!("line {}: malformed entry fields", e.at));
            continue;
        };
        if let Some(before) = &prev_chain
            && before != prev
        {
            problems.push(format!(
                "line {}: entry {i} does not chain from the entry before it (an entry was removed, added or reordered)",
                e.at
            ));
        }
        let again = chain_next(
            &p,
            &entry_header(g, i, t),
            e.rows.iter().map(String::as_str),
        );
        if again != c {
            problems.push(format!(
                "line {}: entry {i}'s lines do not hash to its chain value (a line was edited, added or removed)",
                e.at
            ));
        }
        prev_chain = Some(chain.clone());
    }
    for (key, sum) in &sums {
        match totals.get(key) {
            Some((_, t)) if t == sum => {}
            Some((n, t)) => problems.push(format!(
                "line {n}: total {} {} is {t}, the lines sum to {sum}",
                key.0, key.1
            )),
            None => problems.push(format!("no total row for {} {}", key.0, key.1)),
        }
    }
    for (key, (n, _)) in &totals {
        if !sums.contains_key(key) {
            problems.push(format!(
                "line {n}: a total for {} {} without lines",
                key.0, key.1
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Verified {
        entries: entries.len() as u64,
        lines: entries.iter().map(|e| e.rows.len() as u64).sum(),
        chain: entries
            .first()
            .zip(entries.last())
            .map(|(f, l)| (f.key.3.clone(), l.key.4.clone())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use geowallet_ledger::{
        AccountId, Balance, CreditKind, Currency, EntryEvents, GENESIS, JournalEntry, JournalKind,
        LogIndex, PlayerId, TxId, canonical_line,
    };

    fn file() -> String {
        let line = |seq: u64, tx: &str, amount: u64| JournalEntry {
            account: AccountId {
                player: PlayerId(3),
                currency: Currency::parse("EUR").unwrap(),
            },
            seq,
            group: 1,
            log_index: LogIndex(seq + 4),
            position: 0,
            tx: Some(TxId::new(tx).unwrap()),
            kind: JournalKind::Credit(CreditKind::Deposit),
            amount,
            balance: Balance {
                available: amount,
                held: 0,
            },
        };
        let a = EntryEvents::new(1, 5, 10, GENESIS, vec![line(1, "a", 5), line(2, "b", 7)]);
        let b = EntryEvents::new(1, 9, 11, a.chain, vec![line(3, "~3/EUR/x,\"y", 1)]);
        let mut out = header() + "\n";
        for e in [&a, &b] {
            for l in &e.lines {
                out += &format!(
                    "{},{},{},{},{},{}\n",
                    e.group,
                    e.log_index,
                    e.time_ns,
                    hex(&e.prev_chain),
                    hex(&e.chain),
                    canonical_line(l)
                );
            }
        }
        out + "total,,,,,,,EUR,,credit:deposit,13,,,\n"
    }

    #[test]
    fn a_good_file_verifies_and_every_edit_is_found() {
        let good = file();
        let v = verify(&good).unwrap();
        assert_eq!((v.entries, v.lines), (2, 3));
        for (what, from, to) in [
            ("amount", ",5,5,0,a", ",6,5,0,a"),
            ("tx id", ",0,b", ",0,c"),
            ("time", ",11,", ",12,"),
            ("total", ",13,,,", ",14,,,"),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good, "{what}: the edit must apply");
            assert!(verify(&bad).is_err(), "an edited {what} passed");
        }
        // A removed line (the total adjusted to match) still breaks the chain.
        let lines: Vec<&str> = good.lines().collect();
        let cut = [
            &lines[..1],
            &lines[2..4],
            &["total,,,,,,,EUR,,credit:deposit,8,,,"][..],
        ]
        .concat()
        .join("\n");
        let err = verify(&cut).unwrap_err();
        assert!(err.iter().any(|e| e.contains("do not hash")), "{err:?}");
        // Reordered entries.
        let swapped = [&lines[..1], &lines[3..4], &lines[1..3], &lines[4..]]
            .concat()
            .join("\n");
        let err = verify(&swapped).unwrap_err();
        assert!(err.iter().any(|e| e.contains("does not chain")), "{err:?}");
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_range("1970-01-01").unwrap(), (0, NS_PER_DAY));
        let (s, _) = day_range("2026-12-01").unwrap();
        assert_eq!(s / 1_000_000_000, 1_796_083_200);
        assert!(day_range("2026-02-29").is_err());
        assert!(day_range("2024-02-29").is_ok());
        assert!(day_range("yesterday").is_err());
    }
}
