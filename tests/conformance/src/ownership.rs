//! Ownership: one live owner per run, fencing numbers raised by every claim,
//! stale writes refused whole.

use std::time::Duration;

use flow_core::{
    AtomState, Backend, Claim, FlowDetail, FlowState, LogbookId, Ownership, StorageError, now_unix,
};
use serde_json::json;

use crate::{LIVE, atom, create, done, held, run, snapshots, stored};

fn owned_message(run: flow_core::FlowId, owner: &str, expires_at: f64) -> String {
    let until = humantime_like(expires_at);
    format!(
        "run {run} is held by `{owner}` until {until} (its lease): wait for it to finish or for \
         its lease to run out, or stop that process"
    )
}

/// A time as the errors print it.
fn humantime_like(t: f64) -> String {
    let err = StorageError::Owned {
        run: flow_core::FlowId::new(),
        owner: String::new(),
        expires_at: t,
    }
    .to_string();
    let start = err.find(" until ").expect("the message says until when") + 7;
    let end = err
        .find(" (its lease)")
        .expect("the message names the lease");
    err[start..end].to_string()
}

/// The run's creator holds it: fencing number 1, a lease of the length asked
/// for, measured from when the store granted it.
pub async fn a_new_run_is_held_by_its_creator(b: &dyn Backend) {
    let r = run(LogbookId::new(), "held", FlowState::Running);
    let before = now_unix();
    let lease = create(b, &r, vec![atom("a")], "web-1:812").await;
    let after = now_unix();
    assert_eq!(
        (lease.run, lease.owner.as_str(), lease.fence),
        (r.id, "web-1:812", 1)
    );
    assert!(!lease.cancel_requested);
    let length = LIVE.as_secs_f64();
    assert!(
        lease.expires_at >= before + length - 1.0 && lease.expires_at <= after + length + 1.0,
        "{} not within {before}..{after} + {length}",
        lease.expires_at
    );
    let (flow, _) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow, held(r.clone(), &lease));
    assert!(flow.ownership.is_live(now_unix()));
    let listed = b.list_flows(flow_core::FlowQuery::new()).await.unwrap();
    assert_eq!(listed, [held(r, &lease)]);
}

/// While its lease is live, nobody else can claim the run; the refusal names
/// the holder and when its lease ends, and changes nothing.
pub async fn a_live_lease_keeps_others_out(b: &dyn Backend) {
    let r = run(LogbookId::new(), "busy", FlowState::Running);
    let lease = create(b, &r, vec![atom("a")], "web-1:812").await;
    for _ in 0..2 {
        let err = b
            .claim_flow(r.id, Claim::new("web-2:77", LIVE))
            .await
            .unwrap_err();
        match &err {
            StorageError::Owned {
                run,
                owner,
                expires_at,
            } => {
                assert_eq!((*run, owner.as_str()), (r.id, "web-1:812"));
                assert_eq!(*expires_at, lease.expires_at);
            }
            other => panic!("expected Owned, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            owned_message(r.id, "web-1:812", lease.expires_at)
        );
        assert!(err.is_ownership());
    }
    let (flow, _) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow, held(r, &lease));
}

/// Every claim raises the fencing number, the holder's own included; a write
/// carrying the new number is accepted, one carrying the old is not.
pub async fn a_claim_raises_the_fencing_number(b: &dyn Backend) {
    let r = run(LogbookId::new(), "again", FlowState::Running);
    let first = create(b, &r, vec![atom("a")], "me").await;
    let second = b.claim_flow(r.id, Claim::new("me", LIVE)).await.unwrap();
    assert_eq!((second.fence, second.owner.as_str()), (2, "me"));
    b.save_atoms(r.id, second.fence, vec![done("a", json!([1]), 1)])
        .await
        .unwrap();
    let err = b
        .save_atoms(r.id, first.fence, vec![done("a", json!([2]), 2)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::OwnershipLost {
                fence: 1,
                current: 2,
                ..
            }
        ),
        "{err:?}"
    );
    b.release_flow(&second).await.unwrap();
    let third = b.claim_flow(r.id, Claim::new("you", LIVE)).await.unwrap();
    assert_eq!((third.fence, third.owner.as_str()), (3, "you"));
    let (_, atoms) = b.load_flow(r.id).await.unwrap();
    assert_eq!(snapshots(&atoms), snapshots(&[done("a", json!([1]), 1)]));
}

/// A write with a stale fencing number is refused in its own transaction:
/// neither the run's record nor any atom of it is written; renewing or
/// releasing with the stale lease is refused too.
pub async fn a_stale_write_is_refused_whole(b: &dyn Backend) {
    let r = run(LogbookId::new(), "taken", FlowState::Running);
    let atoms = vec![done("a", json!([1]), 1), atom("b")];
    let old = b
        .create_flow(r.clone(), atoms.clone(), Claim::new("old", Duration::ZERO))
        .await
        .unwrap();
    let new = b.claim_flow(r.id, Claim::new("new", LIVE)).await.unwrap();
    assert_eq!(new.fence, 2);

    let late = FlowDetail {
        state: FlowState::Success,
        ..r.clone()
    };
    let err = b
        .save_run(r.id, old.fence, Some(late), vec![done("b", json!([9]), 1)])
        .await
        .unwrap_err();
    match &err {
        StorageError::OwnershipLost {
            run,
            fence,
            current,
            holder,
        } => {
            assert_eq!((*run, *fence, *current), (r.id, 1, 2));
            assert_eq!(holder.as_deref(), Some("new"));
        }
        other => panic!("expected OwnershipLost, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "run {} is no longer ours: it was claimed again (fencing number 2, ours 1, now held \
             by `new`); nothing more is written or started for it here",
            r.id
        )
    );
    assert!(err.is_ownership());
    for err in [
        b.save_flow(r.clone(), old.fence).await.unwrap_err(),
        b.save_atoms(r.id, old.fence, vec![atom("c")])
            .await
            .unwrap_err(),
        b.renew_lease(&old, LIVE).await.unwrap_err(),
        b.release_flow(&old).await.unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                StorageError::OwnershipLost {
                    fence: 1,
                    current: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let (flow, stored_atoms) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow, held(r, &new));
    assert_eq!(snapshots(&stored_atoms), snapshots(&atoms));
}

/// A lease that ran out can be claimed by anyone: at once when it was
/// granted for no time, after its length otherwise.
pub async fn an_expired_lease_can_be_taken_over(b: &dyn Backend) {
    let r = run(LogbookId::new(), "dead owner", FlowState::Running);
    b.create_flow(
        r.clone(),
        Vec::new(),
        Claim::new("dead", Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let err = b
        .claim_flow(r.id, Claim::new("alive", LIVE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Owned { owner, .. } if owner == "dead"),
        "{err:?}"
    );
    // Waiting for the lease's end is the point here, not a stand-in for an event.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let lease = b.claim_flow(r.id, Claim::new("alive", LIVE)).await.unwrap();
    assert_eq!((lease.fence, lease.owner.as_str()), (2, "alive"));
    let (flow, _) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow.ownership.owner.as_deref(), Some("alive"));
}

/// A released run has no owner, keeps its fencing number, and can be claimed
/// by anyone at once. A renewal that comes after the release (one its
/// holder had under way) is refused: it does not take the run back.
pub async fn a_released_run_can_be_claimed_at_once(b: &dyn Backend) {
    let r = run(LogbookId::new(), "handed back", FlowState::Suspended);
    let lease = create(b, &r, Vec::new(), "me").await;
    b.release_flow(&lease).await.unwrap();
    let err = b.renew_lease(&lease, LIVE).await.unwrap_err();
    assert!(
        matches!(
            &err,
            StorageError::OwnershipLost {
                fence: 1,
                current: 1,
                holder: None,
                ..
            }
        ),
        "{err:?}"
    );
    let (flow, _) = b.load_flow(r.id).await.unwrap();
    assert_eq!(
        flow.ownership,
        Ownership {
            owner: None,
            expires_at: None,
            fence: 1,
            cancel_requested: false
        }
    );
    assert!(!flow.ownership.is_live(now_unix()));
    let next = b.claim_flow(r.id, Claim::new("you", LIVE)).await.unwrap();
    assert_eq!((next.fence, next.owner.as_str()), (2, "you"));
}

/// A renewal moves the end of the holder's lease; a holder that lost the run
/// cannot renew it.
pub async fn renewals_extend_the_lease_of_the_holder_only(b: &dyn Backend) {
    let r = run(LogbookId::new(), "long", FlowState::Running);
    let lease = b
        .create_flow(
            r.clone(),
            Vec::new(),
            Claim::new("me", Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let renewed = b
        .renew_lease(&lease, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!((renewed.fence, renewed.owner.as_str()), (1, "me"));
    assert!(
        renewed.expires_at >= lease.expires_at + 500.0,
        "{renewed:?} vs {lease:?}"
    );
    let (flow, _) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow.ownership.expires_at, Some(renewed.expires_at));

    // A holder whose lease ran out but whom nobody replaced keeps the run.
    let short = b.renew_lease(&renewed, Duration::ZERO).await.unwrap();
    let kept = b
        .renew_lease(&short, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(kept.fence, 1);

    let taken = b.claim_flow(r.id, Claim::new("you", LIVE));
    let err = match taken.await {
        Ok(l) => panic!("the run was taken from a live holder: {l:?}"),
        Err(e) => e,
    };
    assert!(matches!(err, StorageError::Owned { .. }), "{err:?}");
    b.renew_lease(&kept, Duration::ZERO).await.unwrap();
    let yours = b.claim_flow(r.id, Claim::new("you", LIVE)).await.unwrap();
    let err = b.renew_lease(&kept, LIVE).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::OwnershipLost { fence: 1, current: 2, holder, .. } if holder.as_deref() == Some("you")),
        "{err:?}"
    );
    let (flow, _) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow.ownership.expires_at, Some(yours.expires_at));
}

/// A request to cancel is kept with the run, and told to its holder at its
/// next renewal, and to whoever claims the run next.
pub async fn a_request_to_cancel_reaches_the_holder(b: &dyn Backend) {
    let r = run(LogbookId::new(), "cancel me", FlowState::Running);
    let lease = create(b, &r, Vec::new(), "me").await;
    assert!(!b.renew_lease(&lease, LIVE).await.unwrap().cancel_requested);
    b.request_cancel(r.id).await.unwrap();
    let (flow, _) = b.load_flow(r.id).await.unwrap();
    assert!(flow.ownership.cancel_requested);
    assert_eq!(flow.ownership.owner.as_deref(), Some("me"));
    let renewed = b.renew_lease(&lease, LIVE).await.unwrap();
    assert!(renewed.cancel_requested);
    b.release_flow(&renewed).await.unwrap();
    let next = b.claim_flow(r.id, Claim::new("you", LIVE)).await.unwrap();
    assert!(next.cancel_requested);
    let (after, _) = stored(b, r.id).await;
    assert_eq!(after, r);
}

/// Of 20 claimants racing for a run nobody holds, exactly one wins; every
/// other is told who did.
pub async fn one_of_many_claimants_wins(b: &dyn Backend) {
    let r = run(LogbookId::new(), "contested", FlowState::Running);
    b.create_flow(
        r.clone(),
        vec![atom("a")],
        Claim::new("gone", Duration::ZERO),
    )
    .await
    .unwrap();
    let claims = (0..20).map(|i| b.claim_flow(r.id, Claim::new(format!("claimant-{i}"), LIVE)));
    let results = futures::future::join_all(claims).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0];
    assert_eq!(winner.fence, 2);
    for result in &results {
        match result {
            Ok(_) => {}
            Err(StorageError::Owned { owner, .. }) => assert_eq!(owner, &winner.owner),
            Err(other) => panic!("expected Owned, got {other:?}"),
        }
    }
    let (flow, atoms) = b.load_flow(r.id).await.unwrap();
    assert_eq!(flow.ownership.owner.as_deref(), Some(winner.owner.as_str()));
    assert_eq!(atoms[0].state, AtomState::Pending);
}
