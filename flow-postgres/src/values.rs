//! Values as JSONB gives them back, and what PostgreSQL cannot hold.
//!
//! JSONB keeps numbers as `numeric`, and prints them without an exponent:
//! a float written `1e16` (serde_json writes floats of 1e16 and above, and
//! below 1e-5, with one) reads back as `10000000000000000`, which serde_json
//! reads as an integer; `-0.0` reads back as `0.0`. Both are the same number,
//! and decode into the same `f64`, but the record would not match its
//! checksum. So a record is written in the form JSONB gives back, and its
//! checksum is computed over that form: [`jsonb_form`] works it out exactly,
//! by writing each such number as PostgreSQL prints it and reading that with
//! serde_json, as a load does.
//!
//! PostgreSQL's `text` and `jsonb` cannot hold the character U+0000: a value
//! holding one is refused before it is written ([`Unstorable`]), as that
//! write's failure alone.

use std::borrow::Cow;

use serde_json::{Number, Value};

/// A value PostgreSQL cannot store: a string with the character U+0000.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} holds the character U+0000, or a number that would not read back, which \
     PostgreSQL cannot store in text or JSONB: leave it out of the value, or encode it \
     (base64, say)"
)]
pub struct Unstorable {
    /// Where the value was: `run 67e5…, atom `fetch`, result`, say.
    pub what: String,
}

/// Checks a text column.
pub(crate) fn text(what: impl FnOnce() -> String, s: &str) -> Result<(), Unstorable> {
    if s.contains('\0') {
        Err(Unstorable { what: what() })
    } else {
        Ok(())
    }
}

/// Checks an owner's id.
pub(crate) fn text_of_owner(owner: &str) -> Result<(), Unstorable> {
    text(|| format!("the owner id {owner:?}"), owner)
}

/// `v` as JSONB gives it back (borrowed when that is `v` itself), or why it
/// cannot be stored.
pub(crate) fn jsonb_form<'v>(
    what: impl Fn() -> String,
    v: &'v Value,
) -> Result<Cow<'v, Value>, Unstorable> {
    match changed(v) {
        Change::None => Ok(Cow::Borrowed(v)),
        Change::Nul => Err(Unstorable { what: what() }),
        Change::Numbers => Ok(Cow::Owned(rewrite(v))),
    }
}

enum Change {
    None,
    Numbers,
    /// A string with U+0000, or a number that would not read back.
    Nul,
}

fn changed(v: &Value) -> Change {
    let mut numbers = false;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return Change::Nul,
            Value::Number(n) => match reread(n) {
                Ok(None) => {}
                Ok(Some(_)) => numbers = true,
                Err(()) => return Change::Nul,
            },
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (k, item) in map {
                    if k.contains('\0') {
                        return Change::Nul;
                    }
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
    if numbers {
        Change::Numbers
    } else {
        Change::None
    }
}

fn rewrite(v: &Value) -> Value {
    match v {
        Value::Number(n) => reread(n).ok().flatten().unwrap_or_else(|| v.clone()),
        Value::Array(items) => Value::Array(items.iter().map(rewrite).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), rewrite(v))).collect())
        }
        other => other.clone(),
    }
}

/// What a number reads back as, when that is not the number as written;
/// `Err` for one that would not read back at all.
fn reread(n: &Number) -> Result<Option<Value>, ()> {
    if !n.is_f64() {
        return Ok(None);
    }
    let written = n.to_string();
    if !written.contains('e') && !written.starts_with('-') {
        return Ok(None);
    }
    let printed = numeric_text(&written).ok_or(())?;
    if printed == written {
        return Ok(None);
    }
    let back: Value = serde_json::from_str(&printed).map_err(|_| ())?;
    // Compared as written: the checksum is computed over the text.
    let again = back.to_string();
    Ok(if again == written { None } else { Some(back) })
}

/// A JSON number as PostgreSQL's `numeric` prints it: no exponent, as many
/// decimals as the number written had after its point, less its exponent,
/// and no sign on zero.
fn numeric_text(written: &str) -> Option<String> {
    let (negative, unsigned) = match written.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, written),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let digits: String = format!("{int_part}{frac_part}");
    // The value is digits x 10^(point - len), with `point` digits before the point.
    let point = int_part.len() as i64 + exponent;
    let scale = (frac_part.len() as i64 - exponent).max(0);
    let len = digits.len() as i64;
    let mut whole = String::new();
    let mut fraction = String::new();
    if point <= 0 {
        whole.push('0');
        fraction.extend(std::iter::repeat_n('0', (-point) as usize));
        fraction.push_str(&digits);
    } else if point >= len {
        whole.push_str(&digits);
        whole.extend(std::iter::repeat_n('0', (point - len) as usize));
    } else {
        whole.push_str(&digits[..point as usize]);
        fraction.push_str(&digits[point as usize..]);
    }
    // Exactly `scale` decimals: the digits past it are zeros.
    let scale = scale as usize;
    if fraction.len() > scale {
        fraction.truncate(scale);
    } else {
        fraction.extend(std::iter::repeat_n('0', scale - fraction.len()));
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let zero = whole == "0" && fraction.bytes().all(|b| b == b'0');
    let mut out = String::new();
    if negative && !zero {
        out.push('-');
    }
    out.push_str(whole);
    if scale > 0 {
        out.push('.');
        out.push_str(&fraction);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_as_numeric_does() {
        // Each pair was checked against PostgreSQL 15: `SELECT 'X'::jsonb`.
        for (written, printed) in [
            ("1e16", "10000000000000000"),
            ("1.5e16", "15000000000000000"),
            ("-1.234e20", "-123400000000000000000"),
            ("1.5e-7", "0.00000015"),
            ("1e-7", "0.0000001"),
            ("-0.0", "0.0"),
            ("1.0", "1.0"),
            ("123.45", "123.45"),
            ("5e-324", &format!("0.{}5", "0".repeat(323))),
        ] {
            assert_eq!(numeric_text(written).as_deref(), Some(printed), "{written}");
        }
    }

    #[test]
    fn values_take_the_form_jsonb_gives_back() {
        let what = || "x".to_string();
        let plain = json!({"a": [1, -2, 1.5, "s", null, true], "b": 1e15, "c": 1e-5});
        assert!(matches!(jsonb_form(what, &plain), Ok(Cow::Borrowed(_))));
        let v = json!([1e16, -0.0, 1.5e-7, -1e19, 1e20, {"k": 2e16}]);
        let back = jsonb_form(what, &v).unwrap().into_owned();
        assert_eq!(
            back,
            json!([10_000_000_000_000_000u64, 0.0, 1.5e-7, -1e19, 1e20, {"k": 20_000_000_000_000_000u64}])
        );
        assert_eq!(back[1].as_f64().map(f64::is_sign_negative), Some(false));
        assert!(back[3].is_f64(), "-1e19 is past i64: still a float");
        assert!(back[4].is_f64(), "1e20 is past u64: still a float");
        // The same numbers, read as f64.
        let first: Vec<Value> = back.as_array().unwrap()[..5].to_vec();
        let floats: Vec<f64> = serde_json::from_value(Value::Array(first)).unwrap();
        assert_eq!(floats, [1e16, 0.0, 1.5e-7, -1e19, 1e20]);
    }

    #[test]
    fn nul_characters_are_refused() {
        let what = || "run r, atom `a`, result".to_string();
        for v in [
            json!(["a\0b"]),
            json!({"k\0": 1}),
            json!({"k": {"deep": ["x", "\0"]}}),
        ] {
            let err = jsonb_form(what, &v).unwrap_err();
            assert_eq!(err.what, "run r, atom `a`, result");
        }
        assert!(text(|| "name".into(), "a\0").is_err());
        assert!(text(|| "name".into(), "ü ✓").is_ok());
    }
}
