//! Where the steps of a graph go on the run page: a small layered layout,
//! left to right. Each step sits in the column after the longest chain of
//! steps it depends on; the steps of a column are ordered so that edges
//! cross little (a few sweeps that place each step at the mean row of its
//! neighbours).

/// The width of a step's box, in pixels.
pub(crate) const NODE_W: f64 = 176.0;
/// The height of a step's box.
pub(crate) const NODE_H: f64 = 44.0;
const GAP_X: f64 = 64.0;
const GAP_Y: f64 = 18.0;
const MARGIN: f64 = 12.0;
/// Sweeps of the ordering: enough for the graphs of pipelines.
const SWEEPS: usize = 4;

/// The place of every node, and the size of the whole.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    /// The top left corner of each node's box, by node index.
    pub(crate) at: Vec<(f64, f64)>,
    /// The width of the drawing.
    pub(crate) width: f64,
    /// Its height.
    pub(crate) height: f64,
}

/// Lays out `n` nodes joined by `edges` (from, to), drawn left to right.
/// An edge that names no node is left out; a cycle (which a checked graph
/// never has) puts the nodes it holds in the first column.
pub(crate) fn layout(n: usize, edges: &[(usize, usize)]) -> Layout {
    let edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a < n && b < n && a != b)
        .collect();
    let layer = layers(n, &edges);
    let columns = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (node, &l) in layer.iter().enumerate() {
        rows[l].push(node);
    }
    order(&mut rows, &edges, n);
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0);
    let column_h = |k: usize| k as f64 * (NODE_H + GAP_Y) - GAP_Y;
    let height = column_h(tallest).max(NODE_H) + 2.0 * MARGIN;
    let mut at = vec![(0.0, 0.0); n];
    for (l, column) in rows.iter().enumerate() {
        let top = MARGIN + (column_h(tallest) - column_h(column.len())) / 2.0;
        for (k, &node) in column.iter().enumerate() {
            at[node] = (
                MARGIN + l as f64 * (NODE_W + GAP_X),
                top + k as f64 * (NODE_H + GAP_Y),
            );
        }
    }
    let width = (columns as f64 * (NODE_W + GAP_X) - GAP_X).max(NODE_W) + 2.0 * MARGIN;
    Layout { at, width, height }
}

/// The column of each node: the length of the longest chain of edges that
/// ends at it.
fn layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut incoming = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        incoming[b] += 1;
        out[a].push(b);
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&v| incoming[v] == 0).collect();
    while let Some(v) = ready.pop() {
        for &w in &out[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            incoming[w] -= 1;
            if incoming[w] == 0 {
                ready.push(w);
            }
        }
    }
    layer
}

/// Orders each column by the mean row of each node's neighbours in the
/// column before (sweeping right), then after (sweeping left).
fn order(rows: &mut [Vec<usize>], edges: &[(usize, usize)], n: usize) {
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        before[b].push(a);
        after[a].push(b);
    }
    let mut pos = vec![0.0f64; n];
    let place = |rows: &[Vec<usize>], pos: &mut Vec<f64>| {
        for column in rows {
            for (k, &v) in column.iter().enumerate() {
                pos[v] = k as f64;
            }
        }
    };
    place(rows, &mut pos);
    for sweep in 0..SWEEPS {
        let rightward = sweep % 2 == 0;
        let columns: Vec<usize> = if rightward {
            (1..rows.len()).collect()
        } else {
            (0..rows.len().saturating_sub(1)).rev().collect()
        };
        for l in columns {
            let key = |v: usize| {
                let near = if rightward { &before[v] } else { &after[v] };
                if near.is_empty() {
                    pos[v]
                } else {
                    near.iter().map(|&w| pos[w]).sum::<f64>() / near.len() as f64
                }
            };
            let mut keyed: Vec<(f64, usize)> = rows[l].iter().map(|&v| (key(v), v)).collect();
            keyed.sort_by(|x, y| x.0.total_cmp(&y.0));
            rows[l] = keyed.into_iter().map(|(_, v)| v).collect();
            for (k, &v) in rows[l].iter().enumerate() {
                pos[v] = k as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_goes_left_to_right_on_one_row() {
        let l = layout(3, &[(0, 1), (1, 2)]);
        assert_eq!(
            l.at,
            vec![
                (MARGIN, MARGIN),
                (MARGIN + NODE_W + GAP_X, MARGIN),
                (MARGIN + 2.0 * (NODE_W + GAP_X), MARGIN)
            ]
        );
        assert_eq!(l.width, 3.0 * NODE_W + 2.0 * GAP_X + 2.0 * MARGIN);
        assert_eq!(l.height, NODE_H + 2.0 * MARGIN);
    }

    #[test]
    fn a_step_sits_after_its_longest_chain() {
        // 0 -> 1 -> 3, 0 -> 3, 2 alone: 3 is in the third column.
        let l = layout(4, &[(0, 1), (1, 3), (0, 3)]);
        let column = |v: usize| ((l.at[v].0 - MARGIN) / (NODE_W + GAP_X)).round() as usize;
        assert_eq!([column(0), column(1), column(2), column(3)], [0, 1, 0, 2]);
    }

    #[test]
    fn crossings_are_undone() {
        // a->d, b->c: ordered by their sources, c goes above d.
        let l = layout(4, &[(0, 3), (1, 2)]);
        assert!(l.at[2].1 > l.at[3].1);
        assert!(l.at[0].1 < l.at[1].1);
    }

    #[test]
    fn bad_edges_and_cycles_do_not_panic() {
        let l = layout(2, &[(0, 1), (1, 0), (5, 0), (1, 1)]);
        assert_eq!(l.at.len(), 2);
        assert_eq!(layout(0, &[]).at, vec![]);
    }
}
