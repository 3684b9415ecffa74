//! Flows with typed inputs and outputs: what `flow!` evaluates to.

use std::fmt;
use std::marker::PhantomData;

use crate::compile::CompiledFlow;
use crate::engine::{Engine, EngineBuilder};
use crate::error::{BuildError, BuildErrors, RunError};
use crate::flow::Flow;
use crate::symbol::{Data, Value};

/// The declared inputs of a typed flow, as a tuple in declaration order.
pub trait FlowInputs {
    /// The values, in order.
    fn into_values(self) -> Vec<Value>;
}

/// The declared outputs of a typed flow, as a tuple in declaration order.
pub trait FlowOutputs: Sized {
    /// Reads the outputs from the values, in order; `None` when one is
    /// missing or of another type.
    fn from_values(values: &[Option<&Value>]) -> Option<Self>;
}

macro_rules! tuples {
    ($($name:ident $index:tt),*) => {
        impl<$($name: Data),*> FlowInputs for ($($name,)*) {
            fn into_values(self) -> Vec<Value> {
                vec![$(Value::new(self.$index)),*]
            }
        }

        impl<$($name: Data + Clone),*> FlowOutputs for ($($name,)*) {
            fn from_values(values: &[Option<&Value>]) -> Option<Self> {
                Some(($(values.get($index)?.as_ref()?.downcast_ref::<$name>()?.clone(),)*))
            }
        }
    };
}

impl FlowInputs for () {
    fn into_values(self) -> Vec<Value> {
        Vec::new()
    }
}

impl FlowOutputs for () {
    fn from_values(_: &[Option<&Value>]) -> Option<Self> {
        Some(())
    }
}

tuples!(A 0);
tuples!(A 0, B 1);
tuples!(A 0, B 1, C 2);
tuples!(A 0, B 1, C 2, D 3);
tuples!(A 0, B 1, C 2, D 3, E 4);
tuples!(A 0, B 1, C 2, D 3, E 4, F 5);
tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuples!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// A flow whose inputs `I` and outputs `O` are typed tuples: what `flow!`
/// makes.
///
/// It is built when it is made, and its output positions are found then, so
/// a run reads them without looking names up. Make one with `flow!`; run it
/// with [`TypedFlow::run`], or make an [`Engine`] with [`TypedFlow::engine`]
/// for listeners, storage or control, and read the outputs with
/// [`TypedFlow::outputs`].
pub struct TypedFlow<I, O> {
    built: Result<CompiledFlow, BuildErrors>,
    inputs: &'static [&'static str],
    outputs: Vec<Option<(usize, usize)>>,
    output_names: Vec<&'static str>,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> fmt::Debug for TypedFlow<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedFlow")
            .field("built", &self.built)
            .field("inputs", &self.inputs)
            .finish()
    }
}

impl<I: FlowInputs, O: FlowOutputs> TypedFlow<I, O> {
    /// Builds `flow`, whose declared inputs are `inputs` and outputs
    /// `outputs`, in order. Used by `flow!`.
    #[doc(hidden)]
    pub fn new(flow: Flow, inputs: &'static [&'static str], outputs: &[&'static str]) -> Self {
        let built = flow.build();
        let positions = match &built {
            Ok(compiled) => outputs.iter().map(|o| compiled.provider_of(o)).collect(),
            Err(_) => Vec::new(),
        };
        TypedFlow {
            built,
            inputs,
            outputs: positions,
            output_names: outputs.to_vec(),
            _types: PhantomData,
        }
    }

    /// Builds `flow` as [`TypedFlow::new`] does, and fails with `errors`
    /// first when there are any: what `flow!`'s run-time groups found
    /// against their declared interfaces. Used by `flow!`.
    #[doc(hidden)]
    pub fn with_group_errors(
        flow: Flow,
        inputs: &'static [&'static str],
        outputs: &[&'static str],
        mut errors: Vec<BuildError>,
    ) -> Self {
        let name = flow.name().to_string();
        let mut typed = TypedFlow::new(flow, inputs, outputs);
        if !errors.is_empty() {
            if let Err(e) = &typed.built {
                errors.extend(e.errors().iter().cloned());
            }
            typed.built = Err(BuildErrors::new(name, errors));
            typed.outputs = Vec::new();
        }
        typed
    }

    /// The compiled flow.
    ///
    /// # Errors
    /// When it could not be built: the checks `flow!` makes while compiling
    /// are those of the builder, so this only happens for what they cannot
    /// see (a retry controller whose strategy provides another type than
    /// declared, for instance).
    pub fn compiled(&self) -> Result<&CompiledFlow, &BuildErrors> {
        self.built.as_ref()
    }

    /// An engine builder for a run with `inputs`, for listeners, storage or a
    /// parallel engine.
    ///
    /// # Errors
    /// [`RunError::Build`] when the flow could not be built.
    pub fn engine(&self, inputs: I) -> Result<EngineBuilder, RunError> {
        let compiled = self
            .built
            .as_ref()
            .map_err(|e| RunError::Build(e.clone()))?;
        let mut builder = Engine::builder(compiled.clone());
        for (name, value) in self.inputs.iter().zip(inputs.into_values()) {
            builder = builder.input_value(*name, value);
        }
        Ok(builder)
    }

    /// An engine builder with no inputs, to take up a stored run with
    /// [`EngineBuilder::resume`] (the run's inputs come from the store).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flow::{Atom, Flow, FnTask, MemoryBackend, Outputs, Signature, TypedFlow};
    ///
    /// let add = FnTask::sync(
    ///     Signature::new().requires::<u32>("a").provides::<u32>("sum"),
    ///     |args| Ok(Outputs::one(args.get::<u32>(0)? + 1)),
    /// );
    /// let flow: TypedFlow<(u32,), (u32,)> =
    ///     TypedFlow::new(Flow::linear("inc").input::<u32>("a").add(Atom::new("add", add)), &["a"], &["sum"]);
    ///
    /// let store = Arc::new(MemoryBackend::new());
    /// let mut first = flow.engine((41,)).unwrap().storage(store.clone()).build();
    /// first.run().await.unwrap();
    ///
    /// let again = flow.resuming().unwrap().storage(store).resume(first.run_id()).await.unwrap();
    /// assert_eq!(flow.outputs(&again), Some((42,)));
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`RunError::Build`] when the flow could not be built.
    pub fn resuming(&self) -> Result<EngineBuilder, RunError> {
        let compiled = self
            .built
            .as_ref()
            .map_err(|e| RunError::Build(e.clone()))?;
        Ok(Engine::builder(compiled.clone()))
    }

    /// The declared outputs after a run of `engine`, `None` when one is
    /// missing (the run did not finish, or was reverted).
    pub fn outputs(&self, engine: &Engine) -> Option<O> {
        // An output no task provides is one of the flow's inputs, passed through.
        let values: Vec<Option<&Value>> = self
            .outputs
            .iter()
            .zip(&self.output_names)
            .map(|(p, name)| match p {
                Some((atom, k)) => engine.output_at(*atom, *k),
                None => engine.store().value(name),
            })
            .collect();
        O::from_values(&values)
    }

    /// Runs the flow with `inputs` on the serial engine and returns its
    /// outputs.
    ///
    /// # Errors
    /// What [`Engine::run`] returns; [`RunError::Build`] when the flow could
    /// not be built.
    pub async fn run(&self, inputs: I) -> Result<O, RunError> {
        let mut engine = self.engine(inputs)?.build();
        engine.run().await?;
        self.outputs(&engine)
            .ok_or_else(|| RunError::MissingOutputs {
                flow: engine.flow().name().to_string(),
            })
    }
}
