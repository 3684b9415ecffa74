//! The JSON Schema shipped with the crate (`pipeline.schema.json`, for
//! editors) accepts the example pipelines and refuses malformed ones.

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value, json};

fn to_json(node: &Yaml<'_>) -> Value {
    match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => json!(b),
        Yaml::Value(Scalar::Integer(i)) => json!(i),
        Yaml::Value(Scalar::FloatingPoint(f)) => json!(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => json!(s),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::Value(Scalar::String(s)) => s.to_string(),
                    other => format!("{other:?}"),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        other => panic!("unexpected YAML node {other:?}"),
    }
}

fn yaml(text: &str) -> Value {
    let docs = Yaml::load_from_str(text).expect("YAML");
    to_json(&docs[0])
}

fn validator() -> jsonschema::Validator {
    let text = include_str!("../pipeline.schema.json");
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("the schema is valid")
}

#[test]
fn the_examples_validate() {
    let v = validator();
    for file in ["web-check.yaml", "deploy.yaml"] {
        let path = format!(
            "{}/../examples/pipelines/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc = yaml(&std::fs::read_to_string(&path).unwrap());
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert_eq!(errors, Vec::<String>::new(), "{file}");
        // The library agrees.
        flow_pipeline::Pipeline::from_path(&path).expect("a valid pipeline");
    }
}

#[test]
fn malformed_files_do_not_validate() {
    let v = validator();
    let bad = [
        // An unknown key.
        "name: p\nsteps:\n  - {name: a, command: [x], colour: red}\n",
        // Both a command and a script.
        "name: p\nsteps:\n  - {name: a, command: [x], script: x}\n",
        // Neither.
        "name: p\nsteps:\n  - {name: a}\n",
        // A command that is a string.
        "name: p\nsteps:\n  - {name: a, command: ls -l}\n",
        // A default of the wrong type.
        "name: p\nparameters:\n  n: {type: int, default: many}\nsteps: []\n",
        // A duration without a unit.
        "name: p\nsteps:\n  - {name: a, command: [x], timeout: 30}\n",
        // A parameter name with a dash.
        "name: p\nparameters:\n  fail-at: {}\nsteps: []\n",
        // No steps.
        "name: p\n",
        // An environment variable flow sets itself.
        "name: p\nsteps:\n  - {name: a, command: [x], env: {FLOW_STEP: x}}\n",
        // Zero attempts.
        "name: p\nsteps:\n  - {name: a, command: [x], retry: {attempts: 0}}\n",
    ];
    for text in bad {
        let doc = yaml(text);
        assert!(!v.is_valid(&doc), "the schema accepted {text:?}");
        // The library refuses each too.
        assert!(
            flow_pipeline::Pipeline::from_str("bad.yaml", text).is_err(),
            "the library accepted {text:?}"
        );
    }
}
