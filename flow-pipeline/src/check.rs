//! The checks across steps: duplicate names, unknown dependencies, cycles,
//! and placeholders that name no value a step can see.

use std::collections::{HashMap, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::ProblemKind;
use crate::model::Step;
use crate::parse::{Parsed, Reader};

/// Who provides a value.
#[derive(Clone, Copy)]
enum Provider {
    Param,
    Output(usize),
}

/// Checks `parsed`, adding every problem to `r`.
pub(crate) fn check(r: &mut Reader<'_>, parsed: &Parsed) {
    let steps = &parsed.steps;
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        if let Some(&first) = index.get(s.name.as_str()) {
            let first_line = r.source.line_col(steps[first].span.start).0;
            r.problem(
                s.span.clone(),
                ProblemKind::DuplicateStep {
                    name: s.name.clone(),
                    first_line,
                },
            );
        } else {
            index.insert(&s.name, i);
        }
    }

    let mut values: HashMap<&str, Provider> = HashMap::new();
    for p in &parsed.params {
        values.insert(&p.name, Provider::Param);
    }
    for (i, s) in steps.iter().enumerate() {
        let Some((name, span)) = &s.output else {
            continue;
        };
        match values.get(name.as_str()) {
            Some(first) => {
                let first = match first {
                    Provider::Param => format!("parameter `{name}`"),
                    Provider::Output(j) => format!("the output of step `{}`", steps[*j].name),
                };
                r.problem(
                    span.clone(),
                    ProblemKind::DuplicateValue {
                        name: name.clone(),
                        first,
                        second: format!("the output of step `{}`", s.name),
                    },
                );
            }
            None => {
                values.insert(name, Provider::Output(i));
            }
        }
    }

    // The graph of dependencies: an edge from a step to each step it
    // depends on.
    let mut graph: DiGraph<usize, usize> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
    for (i, s) in steps.iter().enumerate() {
        for (k, (dep, span)) in s.depends_on.iter().enumerate() {
            match index.get(dep.as_str()) {
                Some(&j) => {
                    graph.add_edge(nodes[i], nodes[j], k);
                }
                None if parsed.broken_steps.contains(dep) => {}
                None => r.problem(
                    span.clone(),
                    ProblemKind::UnknownDependency {
                        step: s.name.clone(),
                        dependency: dep.clone(),
                    },
                ),
            }
        }
    }
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if cyclic {
            report_cycle(r, steps, &graph, &scc);
        }
    }

    let ancestors = ancestors(&graph, &nodes);
    for (i, s) in steps.iter().enumerate() {
        for undo in [false, true] {
            for t in s.templates(undo) {
                for (name, at) in t.values() {
                    let problem = match values.get(name) {
                        Some(Provider::Param) => None,
                        Some(Provider::Output(j)) if ancestors[i][*j] || (undo && *j == i) => None,
                        Some(Provider::Output(j)) => Some(ProblemKind::NotAPredecessor {
                            step: s.name.clone(),
                            name: name.to_string(),
                            provider: steps[*j].name.clone(),
                        }),
                        None if parsed.broken_values.iter().any(|v| v == name) => None,
                        None => Some(ProblemKind::UnknownPlaceholder {
                            step: s.name.clone(),
                            name: name.to_string(),
                        }),
                    };
                    if let Some(p) = problem {
                        r.problem(at.clone(), p);
                    }
                }
            }
        }
    }
}

/// Reports the cycle through the first step (in file order) of a strongly
/// connected set, at the dependency that leaves it.
fn report_cycle(
    r: &mut Reader<'_>,
    steps: &[Step],
    graph: &DiGraph<usize, usize>,
    scc: &[NodeIndex],
) {
    let Some(&start) = scc.iter().min_by_key(|n| graph[**n]) else {
        return;
    };
    let inside = |n: NodeIndex| scc.contains(&n);
    // The shortest way back to `start`, breadth first, dependencies in file
    // order.
    let mut parent: HashMap<NodeIndex, (NodeIndex, usize)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut found = None;
    'search: while let Some(n) = queue.pop_front() {
        let mut edges: Vec<_> = graph
            .edges(n)
            .map(|e| (*e.weight(), petgraph::visit::EdgeRef::target(&e)))
            .collect();
        edges.sort_unstable();
        for (k, m) in edges {
            if !inside(m) {
                continue;
            }
            if m == start {
                found = Some((n, k));
                break 'search;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(m) {
                e.insert((n, k));
                queue.push_back(m);
            }
        }
    }
    let Some((last, _)) = found else {
        return;
    };
    let mut path = vec![last];
    let mut n = last;
    while n != start {
        let Some(&(p, _)) = parent.get(&n) else {
            return;
        };
        path.push(p);
        n = p;
    }
    path.reverse();
    let mut names: Vec<String> = path.iter().map(|n| steps[graph[*n]].name.clone()).collect();
    names.push(steps[graph[start]].name.clone());
    // The first dependency on the way: the one of `start`.
    let first_edge = if path.len() > 1 {
        parent.get(&path[1]).map(|&(_, k)| k)
    } else {
        found.map(|(_, k)| k)
    };
    let s = &steps[graph[start]];
    let span = first_edge
        .and_then(|k| s.depends_on.get(k))
        .map_or(s.span.clone(), |(_, span)| span.clone());
    r.problem(span, ProblemKind::Cycle { steps: names });
}

/// For each step, which steps run before it (its dependencies, and theirs).
fn ancestors(graph: &DiGraph<usize, usize>, nodes: &[NodeIndex]) -> Vec<Vec<bool>> {
    let n = nodes.len();
    let mut all = vec![vec![false; n]; n];
    for (i, row) in all.iter_mut().enumerate() {
        let mut stack = vec![nodes[i]];
        while let Some(x) = stack.pop() {
            for y in graph.neighbors(x) {
                let j = graph[y];
                if !row[j] {
                    row[j] = true;
                    stack.push(y);
                }
            }
        }
    }
    all
}
