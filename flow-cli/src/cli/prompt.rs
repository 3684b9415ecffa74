//! The values of a run's parameters: those given with `-p`, and, on a
//! terminal, the required ones that were not, asked for with their type and
//! description. Off a terminal a missing value is refused.

use std::io::IsTerminal;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Input, Select};

use flow_cli::ops::OpsError;
use flow_pipeline::{Param, ParamType, Params, Pipeline};

use super::args::ParamArgs;
use super::note;

/// The values for a run of `pipeline`: `None` when the person at the
/// terminal gave up (Ctrl-C, Esc).
///
/// # Errors
/// [`OpsError::Problems`] when the values do not fit the parameters, or a
/// required one is missing and there is no terminal to ask at.
pub(crate) fn values(pipeline: &Pipeline, given: &ParamArgs) -> Result<Option<Params>, OpsError> {
    let mut params = Params::new();
    for (name, value) in &given.params {
        params = params.text(name.clone(), value);
    }
    let missing: Vec<&Param> = pipeline
        .parameters()
        .iter()
        .filter(|p| p.is_required() && !given.params.iter().any(|(n, _)| n == p.name()))
        .collect();
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if missing.is_empty() || !terminal {
        if !missing.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .map(|p| format!("-p {}=VALUE", p.name()))
                .collect();
            note!(
                "flow: give the missing parameters as {} (they are asked for only on a terminal)",
                names.join(" ")
            );
        }
        pipeline.check(&params)?;
        return Ok(Some(params));
    }
    // Values given wrongly are reported before anything is asked.
    if let Err(problems) = pipeline.check(&params) {
        let only_missing = problems.iter().all(|p| {
            matches!(
                p.kind(),
                flow_pipeline::ProblemKind::MissingParameter { .. }
            )
        });
        if !only_missing {
            return Err(problems.into());
        }
    }
    note!(
        "{} needs {} more value{}:",
        pipeline.name(),
        missing.len(),
        if missing.len() == 1 { "" } else { "s" }
    );
    for p in missing {
        match ask(p) {
            Some(value) => params = params.text(p.name(), value),
            None => return Ok(None),
        }
    }
    pipeline.check(&params)?;
    Ok(Some(params))
}

/// Asks for the value of `param`; `None` when the person gave up.
fn ask(param: &Param) -> Option<String> {
    let theme = ColorfulTheme::default();
    let mut prompt = format!("{} ({}", param.name(), param.ty());
    if let Some(d) = param.default() {
        prompt.push_str(&format!(", default {d}"));
    }
    prompt.push(')');
    if let Some(d) = param.description() {
        prompt.push_str(&format!(" {d}"));
    }
    match param.ty() {
        ParamType::OneOf(choices) => Select::with_theme(&theme)
            .with_prompt(prompt)
            .items(choices)
            .default(0)
            .interact_opt()
            .ok()
            .flatten()
            .and_then(|i| choices.get(i).cloned()),
        ParamType::Bool => Select::with_theme(&theme)
            .with_prompt(prompt)
            .items(["true", "false"])
            .default(0)
            .interact_opt()
            .ok()
            .flatten()
            .map(|i| (i == 0).to_string()),
        ty => {
            let ty = ty.clone();
            Input::<String>::with_theme(&theme)
                .with_prompt(prompt)
                .validate_with(move |text: &String| valid(&ty, text))
                .interact_text()
                .ok()
        }
    }
}

/// Whether `text` reads as a value of type `ty`; else what is wrong.
fn valid(ty: &ParamType, text: &str) -> Result<(), String> {
    let ok = match ty {
        ParamType::Int => text.trim().parse::<i64>().is_ok(),
        ParamType::Float => text.trim().parse::<f64>().is_ok_and(f64::is_finite),
        _ => !text.contains('\0'),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("this must be {ty}"))
    }
}
