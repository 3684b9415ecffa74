//! The syntax of `flow!`, parsed into a model.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Path, Token, Type, braced, parenthesized};

/// `name(inputs) -> (outputs) { body }`.
pub(crate) struct FlowDef {
    pub(crate) name: Ident,
    pub(crate) inputs: Vec<(Ident, Type)>,
    pub(crate) outputs: Vec<(Ident, Type)>,
    pub(crate) body: Group,
}

/// What kind of group.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Linear,
    Unordered,
    Graph,
}

impl Kind {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Kind::Linear => "linear",
            Kind::Unordered => "unordered",
            Kind::Graph => "graph",
        }
    }
}

/// `#[retry(expr)]` or `#[retry(expr, provides(name: Type))]` on a group.
pub(crate) struct RetryDef {
    pub(crate) expr: Expr,
    pub(crate) provides: Option<(Ident, Type)>,
    pub(crate) span: Span,
}

/// A group of items.
pub(crate) struct Group {
    pub(crate) kind: Kind,
    pub(crate) name: Option<Ident>,
    pub(crate) span: Span,
    pub(crate) retry: Option<RetryDef>,
    pub(crate) items: Vec<Item>,
    pub(crate) links: Vec<LinkDef>,
}

/// An item of a group.
pub(crate) enum Item {
    Atom(AtomDef),
    Group(Group),
    /// `group name(..) -> (..) = expr`: a group built at run time.
    Run(super::group::RunGroup),
}

/// Use-site input options.
pub(crate) enum Binding {
    /// `input = symbol`: read another symbol.
    Rebind(Ident, Ident),
    /// `input = expr`: a constant.
    Inject(Ident, Expr),
    /// `-> output = symbol`: publish an output under another symbol.
    Rename(Ident, Ident),
}

/// A task placed in the flow.
pub(crate) struct AtomDef {
    pub(crate) path: Path,
    /// `Task { fields }`: the task value as a struct literal.
    pub(crate) fields: Option<TokenStream>,
    pub(crate) label: Option<Ident>,
    pub(crate) bindings: Vec<Binding>,
    /// `= expr`: the task value.
    pub(crate) value: Option<Expr>,
    pub(crate) priority: Option<Expr>,
}

impl AtomDef {
    /// The name links use: the `as` label, else the path's last segment.
    pub(crate) fn label(&self) -> Ident {
        match &self.label {
            Some(l) => l.clone(),
            None => self
                .path
                .segments
                .last()
                .map_or_else(|| Ident::new("task", self.path.span()), |s| s.ident.clone()),
        }
    }
}

/// `from -> to` or `from -> to if decider`.
pub(crate) struct LinkDef {
    pub(crate) from: Ident,
    pub(crate) to: Ident,
    pub(crate) decider: Option<Expr>,
}

impl Parse for FlowDef {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        let content;
        parenthesized!(content in input);
        let inputs = typed_list(&content)?;
        let outputs = if input.peek(Token![->]) {
            input.parse::<Token![->]>()?;
            let content;
            parenthesized!(content in input);
            typed_list(&content)?
        } else {
            Vec::new()
        };
        let body;
        let brace = braced!(body in input);
        let (items, links) = parse_items(&body, Kind::Linear)?;
        if !input.is_empty() {
            return Err(
                input.error("unexpected tokens after the flow's body: `flow!` holds one flow")
            );
        }
        Ok(FlowDef {
            body: Group {
                kind: Kind::Linear,
                name: Some(name.clone()),
                span: brace.span.join(),
                retry: None,
                items,
                links,
            },
            name,
            inputs,
            outputs,
        })
    }
}

fn typed_list(input: ParseStream<'_>) -> syn::Result<Vec<(Ident, Type)>> {
    let list = Punctuated::<(Ident, Type), Token![,]>::parse_terminated_with(input, |input| {
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let ty: Type = input.parse()?;
        Ok((name, ty))
    })?;
    Ok(list.into_iter().collect())
}

/// Items separated by commas; for a graph, then `;` and links.
fn parse_items(input: ParseStream<'_>, kind: Kind) -> syn::Result<(Vec<Item>, Vec<LinkDef>)> {
    let mut items = Vec::new();
    let mut links = Vec::new();
    while !input.is_empty() {
        if input.peek(Token![;]) {
            if kind != Kind::Graph {
                return Err(input.error(
                    "links (`a -> b`) belong to a `graph` group: this group runs its items in its own order",
                ));
            }
            input.parse::<Token![;]>()?;
            while !input.is_empty() {
                links.push(parse_link(input)?);
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
            break;
        }
        items.push(parse_item(input)?);
        if input.is_empty() {
            break;
        }
        if input.peek(Token![;]) {
            continue;
        }
        input
            .parse::<Token![,]>()
            .map_err(|e| syn::Error::new(e.span(), "separate the items of a group with commas"))?;
    }
    Ok((items, links))
}

fn parse_link(input: ParseStream<'_>) -> syn::Result<LinkDef> {
    let from: Ident = input.parse()?;
    input.parse::<Token![->]>()?;
    let to: Ident = input.parse()?;
    let decider = if input.peek(Token![if]) {
        input.parse::<Token![if]>()?;
        Some(input.parse::<Expr>()?)
    } else {
        None
    };
    Ok(LinkDef { from, to, decider })
}

fn group_kind(input: ParseStream<'_>) -> Option<Kind> {
    let fork = input.fork();
    let word: Ident = fork.parse().ok()?;
    let kind = match word.to_string().as_str() {
        "linear" => Kind::Linear,
        "unordered" => Kind::Unordered,
        "graph" => Kind::Graph,
        _ => return None,
    };
    if fork.peek(syn::token::Brace) || (fork.peek(Ident) && fork.peek2(syn::token::Brace)) {
        Some(kind)
    } else {
        None
    }
}

fn parse_item(input: ParseStream<'_>) -> syn::Result<Item> {
    let attrs = input.call(syn::Attribute::parse_outer)?;
    if super::group::peek(input) {
        if let Some(attr) = attrs.first() {
            return Err(syn::Error::new_spanned(
                attr,
                "a group built at run time takes no attribute: give its flow a retry controller with `Flow::retry` where the group is built",
            ));
        }
        return super::group::parse(input).map(Item::Run);
    }
    if let Some(kind) = group_kind(input) {
        let word: Ident = input.parse()?;
        let name = if input.peek(Ident) {
            Some(input.parse::<Ident>()?)
        } else {
            None
        };
        let content;
        braced!(content in input);
        let (items, links) = parse_items(&content, kind)?;
        let mut retry = None;
        for attr in attrs {
            if attr.path().is_ident("retry") {
                retry = Some(parse_retry(&attr)?);
            } else {
                return Err(syn::Error::new_spanned(
                    attr,
                    "a group takes `#[retry(strategy)]` or `#[retry(strategy, provides(name: Type))]`",
                ));
            }
        }
        return Ok(Item::Group(Group {
            kind,
            name,
            span: word.span(),
            retry,
            items,
            links,
        }));
    }
    let path = Path::parse_mod_style(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a task (a `#[task]` function or type), or a group: `linear { .. }`, `unordered { .. }`, `graph { ..; a -> b }`",
        )
    })?;
    let fields = if input.peek(syn::token::Brace) {
        let content;
        braced!(content in input);
        Some(content.parse::<TokenStream>()?)
    } else {
        None
    };
    let mut label = if input.peek(Token![as]) {
        input.parse::<Token![as]>()?;
        Some(input.parse::<Ident>()?)
    } else {
        None
    };
    let mut bindings = Vec::new();
    if input.peek(syn::token::Paren) {
        let content;
        parenthesized!(content in input);
        let list = Punctuated::<(bool, Ident, Expr), Token![,]>::parse_terminated_with(
            &content,
            |input| {
                let output = input.parse::<Option<Token![->]>>()?.is_some();
                let name: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                Ok((output, name, value))
            },
        )?;
        for (output, name, value) in list {
            if output {
                bindings.push(super::rename::binding(name, &value)?);
                continue;
            }
            match &value {
                Expr::Path(p)
                    if p.qself.is_none()
                        && p.path.leading_colon.is_none()
                        && p.path.segments.len() == 1
                        && p.path.segments[0].arguments.is_none() =>
                {
                    bindings.push(Binding::Rebind(name, p.path.segments[0].ident.clone()));
                }
                _ => bindings.push(Binding::Inject(name, value)),
            }
        }
    }
    if label.is_none() && input.peek(Token![as]) {
        input.parse::<Token![as]>()?;
        label = Some(input.parse::<Ident>()?);
    }
    let value = if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Some(input.parse::<Expr>()?)
    } else {
        None
    };
    let mut priority = None;
    for attr in attrs {
        if attr.path().is_ident("priority") {
            priority = Some(attr.parse_args::<Expr>()?);
        } else {
            return Err(syn::Error::new_spanned(
                attr,
                "a task takes `#[priority(n)]`: higher runs first among ready tasks",
            ));
        }
    }
    Ok(Item::Atom(AtomDef {
        path,
        fields,
        label,
        bindings,
        value,
        priority,
    }))
}

fn parse_retry(attr: &syn::Attribute) -> syn::Result<RetryDef> {
    attr.parse_args_with(|input: ParseStream<'_>| {
        let expr: Expr = input.parse()?;
        let mut provides = None;
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            let word: Ident = input.parse()?;
            if word != "provides" {
                return Err(syn::Error::new(
                    word.span(),
                    "after the strategy, `#[retry]` takes `provides(name: Type)`",
                ));
            }
            let content;
            parenthesized!(content in input);
            let name: Ident = content.parse()?;
            content.parse::<Token![:]>()?;
            let ty: Type = content.parse()?;
            provides = Some((name, ty));
        }
        Ok(RetryDef {
            expr,
            provides,
            span: attr.span(),
        })
    })
}
