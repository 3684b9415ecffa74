mod size_tests {
    /// A plain signature (one input, one output) is one allocation of at most
    /// 128 bytes with its reference counts, and an atom holds an
    /// [`FnTask`]'s closures in 48 bytes: every atom of a flow has both.
    #[test]
    fn a_plain_signature_stays_small() {
        use std::mem::size_of;
        assert_eq!(size_of::<crate::task::InputSpec>(), 56);
        assert_eq!(size_of::<crate::task::signature::SignatureData>(), 112);
        assert_eq!(size_of::<crate::task::Runner>(), 48);
        let sig = crate::task::Signature::new()
            .requires::<u64>("x")
            .provides::<u64>("y");
        assert!(sig.0.more.is_none());
        assert!(!sig.0.inputs.spilled() && !sig.0.outputs.spilled());
    }
}

mod body_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::task::fn_task::Body;
    use crate::task::{Args, Context, Exec, FnTask, Outputs, Signature, Task};

    fn run(task: &FnTask, x: u64) -> u64 {
        let args = Args::from_values([crate::Value::new(x)]);
        match task.execute(args, &Context::detached("t")) {
            Exec::Ready(Ok(out)) => *out.values()[0].downcast_ref::<u64>().unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_closure_that_captures_nothing_is_not_counted() {
        let task = FnTask::sync(Signature::new(), |a| Ok(Outputs::one(a.get::<u64>(0)? + 1)));
        assert!(matches!(task.body.execute, Body::Static(_)));
        let copy = task.clone();
        assert_eq!((run(&task, 1), run(&copy, 41)), (2, 42));
    }

    #[test]
    fn a_closure_that_captures_is_counted_and_dropped_with_its_last_clone() {
        let step = Arc::new(10u64);
        let seen = Arc::clone(&step);
        let task = FnTask::sync(Signature::new(), move |a| {
            Ok(Outputs::one(a.get::<u64>(0)? + *step))
        })
        .on_revert_sync(|_| Ok(None));
        assert!(matches!(task.body.execute, Body::Counted(_)));
        assert!(matches!(task.body.revert, Some(Body::Static(_))));
        let copy = task.clone();
        assert_eq!(run(&copy, 5), 15);
        assert_eq!(Arc::strong_count(&seen), 2);
        drop(task);
        assert_eq!(Arc::strong_count(&seen), 2);
        drop(copy);
        assert_eq!(Arc::strong_count(&seen), 1);
    }

    #[test]
    fn an_atom_takes_an_fn_task_apart_and_shares_any_other_task() {
        use crate::symbol::Value;
        use crate::task::Runner;
        let atom = crate::Atom::new(
            "inc",
            FnTask::sync(Signature::new().requires::<u64>("x"), |a| {
                Ok(Outputs::one(a.get::<u64>(0)? + 1))
            }),
        );
        // The signature was moved out of the task, not shared with it.
        assert!(atom.signature.0.is_unique());
        assert_eq!(atom.signature.inputs()[0].name(), "x");
        let Runner::Fn(body) = &atom.task else {
            panic!("an FnTask is held in place");
        };
        assert!(matches!(body.execute, Body::Static(_)));
        let args = Args::from_values([Value::new(6u64)]);
        match atom.task.execute(args, &Context::detached("inc")) {
            Exec::Ready(Ok(out)) => assert_eq!(out.values()[0].downcast_ref::<u64>(), Some(&7)),
            other => panic!("unexpected {other:?}"),
        }

        struct Probe;
        impl Task for Probe {
            fn signature(&self) -> Signature {
                Signature::new().provides::<u64>("y")
            }
            fn execute(&self, _: Args, _: &Context) -> Exec {
                Exec::Ready(Ok(Outputs::one(9u64)))
            }
        }
        let atom = crate::Atom::new("probe", Probe);
        assert!(matches!(atom.task, Runner::Shared(_)));
        assert_eq!(atom.signature.outputs()[0].name(), "y");
        match atom
            .task
            .execute(Args::from_values([]), &Context::detached("probe"))
        {
            Exec::Ready(Ok(out)) => assert_eq!(out.values()[0].downcast_ref::<u64>(), Some(&9)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_zero_sized_closure_with_a_drop_is_dropped() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Guard;
        impl Drop for Guard {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        let guard = Guard;
        let task = FnTask::sync(Signature::new(), move |a| {
            let _keep = &guard;
            Ok(Outputs::one(a.get::<u64>(0)? * 2))
        });
        assert!(matches!(task.body.execute, Body::Counted(_)));
        assert_eq!(run(&task, 4), 8);
        assert_eq!(DROPS.load(Ordering::SeqCst), 0);
        drop(task);
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    }
}
