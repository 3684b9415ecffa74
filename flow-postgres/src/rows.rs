//! Records made ready to write: every value in the form the store gives it
//! back, its checksum computed over that form, text checked. This work is
//! done by the caller, before the write joins a batch, so that the writer
//! only sends; a record that cannot be stored fails its own write.

use std::borrow::Cow;

use flow_core::storage::{atom_checksum, definition_checksum, flow_checksum};
use flow_core::{AtomDetail, Definition, Failure, FlowDetail, FlowId, LogBook};
use serde_json::Value;
use uuid::Uuid;

use crate::values::{Unstorable, jsonb_form, text};

/// The store's id of a run.
pub(crate) fn uuid_of(id: FlowId) -> Uuid {
    Uuid::from_bytes(*id.as_bytes())
}

/// A run's record.
#[derive(Debug, Clone)]
pub(crate) struct FlowRow {
    pub(crate) id: Uuid,
    pub(crate) logbook: Uuid,
    pub(crate) name: String,
    pub(crate) state: &'static str,
    pub(crate) meta: Value,
    pub(crate) created_at: f64,
    pub(crate) updated_at: f64,
    pub(crate) checksum: i64,
}

/// An atom's record.
#[derive(Debug, Clone)]
pub(crate) struct AtomRow {
    pub(crate) run: Uuid,
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) state: &'static str,
    pub(crate) intention: &'static str,
    pub(crate) result: Option<Value>,
    pub(crate) failure: Option<Value>,
    pub(crate) revert_result: Option<Value>,
    pub(crate) revert_failure: Option<Value>,
    pub(crate) progress: f32,
    pub(crate) attempts: i64,
    pub(crate) version: i64,
    pub(crate) meta: Value,
    pub(crate) checksum: i64,
}

/// A logbook's record.
#[derive(Debug, Clone)]
pub(crate) struct BookRow {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) created_at: f64,
    pub(crate) updated_at: f64,
    pub(crate) meta: Value,
}

/// A definition's record.
#[derive(Debug, Clone)]
pub(crate) struct DefinitionRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) format: String,
    pub(crate) body: String,
    pub(crate) created_at: f64,
    pub(crate) checksum: i64,
}

fn owned(v: Cow<'_, Value>) -> Value {
    v.into_owned()
}

/// A run's record, as the store will give it back.
pub(crate) fn flow_row(flow: &FlowDetail) -> Result<FlowRow, Unstorable> {
    let id = flow.id;
    text(|| format!("run {id}: its flow's name"), &flow.name)?;
    let meta = jsonb_form(|| format!("run {id}: its metadata (inputs)"), &flow.meta)?;
    let checksum = match &meta {
        Cow::Borrowed(_) => flow_checksum(flow),
        Cow::Owned(m) => flow_checksum(&FlowDetail {
            meta: m.clone(),
            ..flow.clone()
        }),
    };
    Ok(FlowRow {
        id: uuid_of(id),
        logbook: Uuid::from_bytes(*flow.logbook.as_bytes()),
        name: flow.name.clone(),
        state: flow.state.as_str(),
        meta: owned(meta),
        created_at: flow.created_at,
        updated_at: flow.updated_at,
        checksum: i64::from(checksum),
    })
}

fn failure_form<'f>(
    what: impl Fn() -> String,
    f: Option<&'f Failure>,
) -> Result<(Option<Value>, Option<Cow<'f, Failure>>), Unstorable> {
    let Some(f) = f else {
        return Ok((None, None));
    };
    let json = serde_json::to_value(f).unwrap_or(Value::Null);
    match jsonb_form(&what, &json)? {
        Cow::Borrowed(_) => Ok((Some(json), Some(Cow::Borrowed(f)))),
        Cow::Owned(back) => {
            // What a load will decode: the checksum is computed over it.
            let decoded = serde_json::from_value::<Failure>(back.clone())
                .map_err(|_| Unstorable { what: what() })?;
            Ok((Some(back), Some(Cow::Owned(decoded))))
        }
    }
}

fn unchanged<T: Clone>(v: &Option<Cow<'_, T>>) -> bool {
    v.as_ref().is_none_or(|c| matches!(c, Cow::Borrowed(_)))
}

/// An atom's record of run `run`, as the store will give it back.
pub(crate) fn atom_row(run: FlowId, a: &AtomDetail) -> Result<AtomRow, Unstorable> {
    let name = &a.name;
    let at = |field: &'static str| move || format!("run {run}, atom `{name}`: its {field}");
    text(at("name"), name)?;
    let result = a
        .result
        .as_ref()
        .map(|v| jsonb_form(at("result"), v))
        .transpose()?;
    let revert_result = a
        .revert_result
        .as_ref()
        .map(|v| jsonb_form(at("revert result"), v))
        .transpose()?;
    let meta = jsonb_form(at("metadata"), &a.meta)?;
    let (failure, failure_back) = failure_form(at("failure"), a.failure.as_ref())?;
    let (revert_failure, revert_failure_back) =
        failure_form(at("revert failure"), a.revert_failure.as_ref())?;

    let checksum = if unchanged(&result)
        && unchanged(&revert_result)
        && matches!(meta, Cow::Borrowed(_))
        && unchanged(&failure_back)
        && unchanged(&revert_failure_back)
    {
        atom_checksum(run, a)
    } else {
        atom_checksum(
            run,
            &AtomDetail {
                result: result.as_ref().map(|v| v.clone().into_owned()),
                revert_result: revert_result.as_ref().map(|v| v.clone().into_owned()),
                meta: meta.clone().into_owned(),
                failure: failure_back.as_ref().map(|f| f.clone().into_owned()),
                revert_failure: revert_failure_back.as_ref().map(|f| f.clone().into_owned()),
                ..a.clone()
            },
        )
    };
    Ok(AtomRow {
        run: uuid_of(run),
        name: name.clone(),
        kind: a.kind.as_str(),
        state: a.state.as_str(),
        intention: a.intention.as_str(),
        result: result.map(owned),
        failure,
        revert_result: revert_result.map(owned),
        revert_failure,
        progress: a.progress,
        attempts: i64::from(a.attempts),
        version: i64::try_from(a.version).unwrap_or(i64::MAX),
        meta: owned(meta),
        checksum: i64::from(checksum),
    })
}

/// A logbook's record.
pub(crate) fn book_row(b: &LogBook) -> Result<BookRow, Unstorable> {
    let id = b.id;
    text(|| format!("logbook {id}: its name"), &b.name)?;
    let meta = jsonb_form(|| format!("logbook {id}: its metadata"), &b.meta)?;
    Ok(BookRow {
        id: Uuid::from_bytes(*b.id.as_bytes()),
        name: b.name.clone(),
        created_at: b.created_at,
        updated_at: b.updated_at,
        meta: owned(meta),
    })
}

/// A definition's record.
pub(crate) fn definition_row(d: &Definition) -> Result<DefinitionRow, Unstorable> {
    for (field, s) in [
        ("id", &d.id),
        ("name", &d.name),
        ("format", &d.format),
        ("body", &d.body),
    ] {
        text(|| format!("definition {}: its {field}", d.id), s)?;
    }
    Ok(DefinitionRow {
        id: d.id.clone(),
        name: d.name.clone(),
        format: d.format.clone(),
        body: d.body.clone(),
        created_at: d.created_at,
        checksum: i64::from(definition_checksum(&d.name, &d.format, &d.body)),
    })
}
