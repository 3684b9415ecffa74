//! The benchmark shapes build and run to the values they promise, on both
//! engines, so that the benchmarks measure working flows.

#[path = "../benches/shapes/mod.rs"]
mod shapes;

use flow::{Engine, RunError};

async fn run(shape: &str, size: usize, parallel: bool) -> (Result<(), RunError>, Engine) {
    let (flow, _) = shapes::build(shape, size).expect("a known shape");
    let builder = Engine::builder(flow.build().expect("the shape builds")).input("v0", 0u64);
    let mut engine = if parallel {
        builder.parallel(4).build()
    } else {
        builder.build()
    };
    (engine.run().await, engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_runs_to_its_expected_values() {
    for parallel in [false, true] {
        let (result, engine) = run("linear_chain", 300, parallel).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(engine.fetch::<u64>("v300").copied(), Some(300));

        let (result, engine) = run("fan_out_in", 50, parallel).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(engine.fetch::<u64>("sum").copied(), Some(50));

        // Node i of the tree holds its depth + 1: node 1 is 1, nodes 4..8 are 3.
        let (result, engine) = run("binary_tree", 15, parallel).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(engine.fetch::<u64>("v1").copied(), Some(1));
        assert_eq!(engine.fetch::<u64>("v5").copied(), Some(3));
        assert_eq!(engine.fetch::<u64>("v15").copied(), Some(4));

        // Cell (i, j) is 1 + the cells above and to the left of it.
        let (result, engine) = run("wavefront", 16, parallel).await;
        assert!(result.is_ok(), "{result:?}");
        let mut want = [[0u64; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                let up = if i > 0 { want[i - 1][j] } else { 0 };
                let left = if j > 0 { want[i][j - 1] } else { 0 };
                want[i][j] = 1 + up + left;
                let got = engine.fetch::<u64>(&format!("c{i}_{j}")).copied();
                assert_eq!(got, Some(want[i][j]), "cell ({i}, {j})");
            }
        }
        assert_eq!(want[1][1], 5);

        let (result, engine) = run("embarrassing", 20, parallel).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(engine.fetch::<u64>("e7").copied(), Some(shapes::spin(7)),);

        let (result, _) = run("revert_chain", 40, parallel).await;
        match result {
            Err(RunError::Reverted { failures, .. }) => {
                assert_eq!(failures.len(), 1);
                assert_eq!(failures[0].atom, "t39");
            }
            other => panic!("revert_chain should revert: {other:?}"),
        }
    }
}

#[test]
fn the_shapes_have_the_sizes_they_report() {
    assert_eq!(
        shapes::build("linear_chain", 10).map(|(f, n)| (f.build().unwrap().len(), n)),
        Some((10, 10))
    );
    assert_eq!(
        shapes::build("fan_out_in", 10).map(|(f, n)| (f.build().unwrap().len(), n)),
        Some((12, 12))
    );
    assert_eq!(
        shapes::build("wavefront", 17).map(|(f, n)| (f.build().unwrap().len(), n)),
        Some((16, 16))
    );
    assert!(shapes::build("no_such_shape", 10).is_none());
}
