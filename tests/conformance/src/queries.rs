//! Queries over runs (filters, paging, newest first), pruning, and stored
//! definitions.

use flow_core::{Backend, Claim, Definition, FlowDetail, FlowId, FlowQuery, FlowState, LogbookId};
use serde_json::json;

use crate::{LIVE, atom, done, run};

fn ids(flows: &[FlowDetail]) -> Vec<FlowId> {
    flows.iter().map(|f| f.id).collect()
}

/// Runs are listed newest first, filtered by flow, state, time of creation
/// and owner, and paged.
pub async fn list_filters_and_pages(b: &dyn Backend) {
    assert_eq!(
        b.list_flows(FlowQuery::new()).await.unwrap(),
        Vec::<FlowDetail>::new()
    );
    let book = LogbookId::new();
    // r0 is the oldest; every third run is `deploy`, the others `check`.
    let mut runs = Vec::new();
    for (i, state) in FlowState::ALL.into_iter().enumerate() {
        let name = if i % 3 == 0 { "deploy" } else { "check" };
        let mut r = run(book, name, state);
        r.created_at = 1_700_000_000.0 + i as f64 * 60.0;
        // Not in the order of creation.
        r.updated_at = 1_800_000_000.0 - i as f64;
        let owner = if i % 2 == 0 { "even" } else { "odd" };
        b.create_flow(r.clone(), vec![atom("a")], Claim::new(owner, LIVE))
            .await
            .unwrap();
        runs.push(r);
    }
    let newest_first: Vec<FlowId> = runs.iter().rev().map(|r| r.id).collect();
    let all = b.list_flows(FlowQuery::new()).await.unwrap();
    assert_eq!(ids(&all), newest_first);
    assert_eq!(all[0].ownership.owner.as_deref(), Some("odd"));

    let deploys = b.list_flows(FlowQuery::new().name("deploy")).await.unwrap();
    assert_eq!(ids(&deploys), [runs[6].id, runs[3].id, runs[0].id]);

    let ended = FlowQuery::new()
        .state(FlowState::Success)
        .state(FlowState::Reverted)
        .state(FlowState::Failure);
    let got = b.list_flows(ended).await.unwrap();
    assert_eq!(ids(&got), [runs[4].id, runs[3].id, runs[2].id]);

    let window = FlowQuery::new()
        .created_after(1_700_000_000.0 + 120.0)
        .created_before(1_700_000_000.0 + 300.0);
    let got = b.list_flows(window).await.unwrap();
    assert_eq!(ids(&got), [runs[4].id, runs[3].id, runs[2].id]);

    let odd = b.list_flows(FlowQuery::new().owner("odd")).await.unwrap();
    assert_eq!(ids(&odd), [runs[7].id, runs[5].id, runs[3].id, runs[1].id]);

    let page = |offset, limit| FlowQuery::new().offset(offset).limit(limit);
    assert_eq!(
        ids(&b.list_flows(page(0, 3)).await.unwrap()),
        newest_first[..3]
    );
    assert_eq!(
        ids(&b.list_flows(page(3, 3)).await.unwrap()),
        newest_first[3..6]
    );
    assert_eq!(
        ids(&b.list_flows(page(6, 3)).await.unwrap()),
        newest_first[6..]
    );
    assert_eq!(
        b.list_flows(page(9, 3)).await.unwrap(),
        Vec::<FlowDetail>::new()
    );
    let narrow = FlowQuery::new().name("check").owner("even").limit(1);
    assert_eq!(ids(&b.list_flows(narrow).await.unwrap()), [runs[4].id]);
}

/// Pruning deletes the runs that ended before the given time, with their
/// atoms, and nothing else.
pub async fn prune_deletes_old_ended_runs(b: &dyn Backend) {
    let book = LogbookId::new();
    let mut runs = Vec::new();
    for (i, state) in [
        FlowState::Success,
        FlowState::Reverted,
        FlowState::Failure,
        FlowState::Running,
        FlowState::Suspended,
        FlowState::Success,
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = run(book, &format!("r{i}"), state);
        // The last run ended after the cut.
        r.updated_at = if i == 5 { 2_000.0 } else { 1_000.0 };
        r.created_at = i as f64;
        b.create_flow(
            r.clone(),
            vec![done("a", json!([i]), 1)],
            Claim::new("me", LIVE),
        )
        .await
        .unwrap();
        runs.push(r);
    }
    assert_eq!(b.prune_flows(1_500.0).await.unwrap(), 3);
    let left = b.list_flows(FlowQuery::new()).await.unwrap();
    assert_eq!(ids(&left), [runs[5].id, runs[4].id, runs[3].id]);
    for r in &runs[..3] {
        let err = b.load_flow(r.id).await.unwrap_err();
        assert!(
            matches!(err, flow_core::StorageError::NotFound(id) if id == r.id),
            "{err:?}"
        );
    }
    let (_, atoms) = b.load_flow(runs[3].id).await.unwrap();
    assert_eq!(atoms[0].result, Some(json!([3])));
    assert_eq!(b.prune_flows(1_500.0).await.unwrap(), 0);
}

/// A definition is kept under the hash of its content; storing it again
/// changes nothing; another content is another definition.
pub async fn definitions_are_kept_by_content(b: &dyn Backend) {
    let body = "name: web-check\nsteps:\n  - name: ping\n    run: [ping, -c, '2', '{ip}']\n";
    let first = Definition::new("web-check", "pipeline/yaml", body);
    assert_eq!(b.load_definition(&first.id).await.unwrap(), None);
    b.save_definition(first.clone()).await.unwrap();
    assert_eq!(
        b.load_definition(&first.id).await.unwrap(),
        Some(first.clone())
    );

    let mut again = Definition::new("web-check", "pipeline/yaml", body);
    again.created_at = first.created_at + 100.0;
    assert_eq!(again.id, first.id);
    b.save_definition(again).await.unwrap();
    assert_eq!(
        b.load_definition(&first.id).await.unwrap(),
        Some(first.clone())
    );

    let changed = Definition::new("web-check", "pipeline/yaml", format!("{body}# v2\n"));
    assert_ne!(changed.id, first.id);
    b.save_definition(changed.clone()).await.unwrap();
    assert_eq!(b.load_definition(&changed.id).await.unwrap(), Some(changed));
    assert_eq!(b.load_definition(&first.id).await.unwrap(), Some(first));
}
