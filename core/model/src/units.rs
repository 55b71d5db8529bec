//! Sizes, rates and dates as people type them (`500G`, `1.5TiB`, `20MB/s`, `100Mbit`,
//! `2027-06-30`), parsed in one place so that the CLI and the console accept the same text.
//! Sizes use binary multiples (1K = 1024 bytes), as storage quotas usually do.

/// How much of something may be used: a number of bytes, or no limit of its own (a
/// subtenant that shares its tenant's quota). Stored and sent as `-1` for unlimited, which
/// only [`Limit::from_stored`] and [`Limit::stored`] spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many bytes (0: nothing may be stored).
    Bytes(u64),
    /// No limit of its own.
    Unlimited,
}

impl Limit {
    /// The limit a stored or sent number means: negative is unlimited.
    pub fn from_stored(value: i64) -> Self {
        u64::try_from(value).map_or(Self::Unlimited, Self::Bytes)
    }

    /// The number it is stored and sent as.
    pub fn stored(self) -> i64 {
        match self {
            Self::Bytes(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Self::Unlimited => -1,
        }
    }

    /// Whether there is no limit of its own.
    pub fn is_unlimited(self) -> bool {
        self == Self::Unlimited
    }

    /// Whether `bytes` fit within it.
    pub fn allows(self, bytes: u64) -> bool {
        match self {
            Self::Bytes(n) => bytes <= n,
            Self::Unlimited => true,
        }
    }
}

impl std::fmt::Display for Limit {
    /// `unlimited` or `1.5 GiB`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(n) => f.pad(&human_bytes(*n)),
            Self::Unlimited => f.pad("unlimited"),
        }
    }
}

impl serde::Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.stored())
    }
}

impl<'de> serde::Deserialize<'de> for Limit {
    /// A size in bytes, or -1 for unlimited; any other negative number is refused.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match i64::deserialize(deserializer)? {
            n if n < -1 => Err(serde::de::Error::custom(format!(
                "{n} is not a quota: give a size in bytes, or -1 for unlimited"
            ))),
            n => Ok(Self::from_stored(n)),
        }
    }
}

/// Parses a limit: `unlimited`, or a size — a number with an optional unit K, M, G, T, P
/// (optionally followed by `B` or `iB`), binary multiples.
pub fn parse_limit(text: &str) -> Result<Limit, String> {
    if text.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(Limit::Unlimited);
    }
    parse_bytes(text).map(Limit::Bytes)
}

/// Parses a size (no `unlimited`).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size; write it like 500G, 1.5T or 800MiB"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => {
            return Err(format!(
                "\"{text}\" has an unknown unit; use K, M, G, T or P"
            ));
        }
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(0.0..9.0e18).contains(&bytes) {
        return Err(format!("\"{text}\" is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a rate in bytes per second: a size per second (`20MB/s`, `512K`) or bits
/// (`100Mbit`, `1Gbit/s`, decimal multiples as networks count them); `0` or `unlimited`: none.
pub fn parse_rate(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") || t == "0" {
        return Ok(0);
    }
    let lower = t.to_ascii_lowercase();
    let lower = lower.strip_suffix("/s").unwrap_or(&lower);
    if let Some(bits) = lower.strip_suffix("bit") {
        let split = bits
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(bits.len());
        let (number, unit) = bits.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("\"{text}\" is not a rate; write it like 100Mbit or 20MB/s"))?;
        let factor = match unit.trim() {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            _ => {
                return Err(format!(
                    "\"{text}\" has an unknown unit; use kbit, Mbit or Gbit"
                ));
            }
        };
        return Ok((value * factor / 8.0).round() as i64);
    }
    parse_bytes(lower).map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Parses a date `YYYY-MM-DD` as the end of that day (UTC), in ms since the epoch: a lease
/// "until 2027-06-30" includes that day.
pub fn parse_end_of_day(text: &str) -> Result<i64, String> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("\"{text}\" is not a date; write it as YYYY-MM-DD"))?;
    let end = date
        .and_hms_milli_opt(23, 59, 59, 999)
        .ok_or_else(|| format!("\"{text}\" is not a date"))?;
    Ok(end.and_utc().timestamp_millis())
}

/// Parses a duration: `45s`, `10m`, `2h` (a plain number is seconds); returns seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("\"{text}\" is not a duration; use for example 30s, 10m or 2h");
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// A length of time for people, to the largest two units: `45 s`, `3 min 20 s`, `2 h 5 min`,
/// `3 d 4 h`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s == 0 => format!("{m} min"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A byte count for people: `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A date from ms since the epoch, `YYYY-MM-DD` (UTC), or `-` when there is none.
pub fn date_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or("-".into(), |d| d.format("%Y-%m-%d").to_string())
}

/// A moment from ms since the epoch in this computer's time zone, `YYYY-MM-DD HH:MM`.
pub fn date_time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or("-".into(), |d| {
        d.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("45s"), Ok(45));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("30s, 10m or 2h")
        );
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(human_duration(0), "0 s");
        assert_eq!(human_duration(45), "45 s");
        assert_eq!(human_duration(120), "2 min");
        assert_eq!(human_duration(200), "3 min 20 s");
        assert_eq!(human_duration(7500), "2 h 5 min");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
    }

    #[test]
    fn sizes_rates_and_dates_parse_as_typed() {
        assert_eq!(parse_limit("500G"), Ok(Limit::Bytes(500 << 30)));
        assert_eq!(parse_limit("1.5TiB"), Ok(Limit::Bytes(3 << 39)));
        assert_eq!(parse_limit("800 MB"), Ok(Limit::Bytes(800 << 20)));
        assert_eq!(parse_limit("4096"), Ok(Limit::Bytes(4096)));
        assert_eq!(parse_limit("0"), Ok(Limit::Bytes(0)));
        assert_eq!(parse_limit("Unlimited"), Ok(Limit::Unlimited));
        assert!(parse_limit("lots").unwrap_err().contains("500G"));
        assert!(parse_limit("5X").unwrap_err().contains("unknown unit"));
        assert_eq!(parse_rate("100Mbit"), Ok(12_500_000));
        assert_eq!(parse_rate("20MB/s"), Ok(20 << 20));
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_end_of_day("2027-06-30"), Ok(1_814_399_999_999));
        assert!(parse_end_of_day("30.06.2027").is_err());
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(Limit::Unlimited.to_string(), "unlimited");
        assert_eq!(Limit::Bytes(0).to_string(), "0 B");
        assert_eq!(date_text(Some(1_814_399_999_999)), "2027-06-30");
        assert_eq!(date_text(None), "-");
    }

    #[test]
    fn a_limit_reads_back_as_stored() {
        for (stored, limit) in [
            (-1, Limit::Unlimited),
            (0, Limit::Bytes(0)),
            (5 << 30, Limit::Bytes(5 << 30)),
        ] {
            assert_eq!(Limit::from_stored(stored), limit);
            assert_eq!(limit.stored(), stored);
        }
        assert_eq!(Limit::from_stored(-7), Limit::Unlimited);
        let json = serde_json::to_string(&[Limit::Unlimited, Limit::Bytes(5)]).unwrap();
        assert_eq!(json, "[-1,5]", "the wire keeps its numbers");
        assert_eq!(
            serde_json::from_str::<Vec<Limit>>(&json).unwrap(),
            [Limit::Unlimited, Limit::Bytes(5)]
        );
        assert!(
            serde_json::from_str::<Limit>("-5").is_err(),
            "only -1 means unlimited"
        );
        assert!(
            !Limit::Bytes(0).is_unlimited(),
            "a quota of 0 is full, not unlimited"
        );
    }
}
