//! Typed symbols, type identity, and the value cell that carries data between atoms.
//!
//! A *symbol* is a name together with a type: `backup: BackupId`. Two symbols are the
//! same only when both agree. Values travel between atoms as [`Value`]s: a cheaply
//! cloneable, type-erased, shared cell that can be downcast back to its type and
//! encoded to JSON for the journal.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The name of a symbol, an atom or a flow.
///
/// Static names cost nothing; owned names are shared.
pub type Name = Cow<'static, str>;

/// What a value must be to travel between atoms: shareable across threads,
/// printable for events and logs, and encodable for the journal.
///
/// Implemented for every type that satisfies the bounds.
///
/// ```
/// fn assert_data<T: flow::Data>() {}
/// assert_data::<u64>();
/// assert_data::<String>();
/// assert_data::<Vec<(String, u32)>>();
/// ```
pub trait Data: Any + fmt::Debug + Send + Sync + Serialize + DeserializeOwned {}

impl<T> Data for T where T: Any + fmt::Debug + Send + Sync + Serialize + DeserializeOwned {}

/// An error while encoding a value to JSON or decoding it back.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} a value of type `{type_name}`: {source}")]
pub struct CodecError {
    action: &'static str,
    type_name: &'static str,
    #[source]
    source: serde_json::Error,
}

impl CodecError {
    /// The Rust type the value was encoded from or decoded into.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// What serde said, without the type: `invalid type: string "x", expected u64`.
    pub fn reason(&self) -> String {
        self.source.to_string()
    }
}

/// The identity of a symbol's type, with the codec that persists its values.
///
/// ```
/// use flow::TypeInfo;
/// let t = TypeInfo::of::<u32>();
/// assert_eq!(t.name(), "u32");
/// assert!(t.is::<u32>());
/// assert!(!t.is::<u64>());
/// ```
#[derive(Clone, Copy)]
pub struct TypeInfo(&'static TypeData);

/// What [`TypeInfo`] points to: one constant per type, so that a `TypeInfo`
/// is one pointer wide and the signatures of a large flow stay small.
struct TypeData {
    id: fn() -> TypeId,
    name: fn() -> &'static str,
    decode: fn(serde_json::Value) -> Result<Value, CodecError>,
}

struct TypeTable<T>(std::marker::PhantomData<T>);

impl<T: Data> TypeTable<T> {
    const DATA: TypeData = TypeData {
        id: TypeId::of::<T>,
        name: std::any::type_name::<T>,
        decode: decode_as::<T>,
    };
}

impl TypeInfo {
    /// The type information of `T`.
    pub fn of<T: Data>() -> Self {
        TypeInfo(&TypeTable::<T>::DATA)
    }

    /// The type's [`TypeId`].
    pub fn id(&self) -> TypeId {
        (self.0.id)()
    }

    /// The type's name, as [`std::any::type_name`] prints it.
    pub fn name(&self) -> &'static str {
        (self.0.name)()
    }

    /// Whether this is the type `T`.
    pub fn is<T: 'static>(&self) -> bool {
        (self.0.id)() == TypeId::of::<T>()
    }

    /// Decodes a JSON value into a [`Value`] of this type.
    ///
    /// # Errors
    /// When the JSON does not describe a value of this type.
    pub fn decode(&self, json: serde_json::Value) -> Result<Value, CodecError> {
        (self.0.decode)(json)
    }
}

impl PartialEq for TypeInfo {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0) || (self.0.id)() == (other.0.id)()
    }
}

impl Eq for TypeInfo {}

impl fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn decode_as<T: Data>(json: serde_json::Value) -> Result<Value, CodecError> {
    serde_json::from_value::<T>(json)
        .map(Value::new)
        .map_err(|source| CodecError {
            action: "decode",
            type_name: std::any::type_name::<T>(),
            source,
        })
}

/// A named, typed symbol: the untyped form used in signatures and flows.
///
/// ```
/// use flow::SymbolSpec;
/// let s = SymbolSpec::of::<u64>("count");
/// assert_eq!(s.name(), "count");
/// assert_eq!(s.to_string(), "count: u64");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolSpec {
    name: Name,
    ty: TypeInfo,
}

impl SymbolSpec {
    /// A symbol named `name` of type `T`.
    pub fn of<T: Data>(name: impl Into<Name>) -> Self {
        SymbolSpec {
            name: name.into(),
            ty: TypeInfo::of::<T>(),
        }
    }

    /// A symbol from a name and a type.
    pub fn new(name: impl Into<Name>, ty: TypeInfo) -> Self {
        SymbolSpec {
            name: name.into(),
            ty,
        }
    }

    /// The symbol's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The symbol's type.
    pub fn ty(&self) -> TypeInfo {
        self.ty
    }
}

impl fmt::Display for SymbolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.ty.name())
    }
}

trait ErasedData: Any + fmt::Debug + Send + Sync {
    fn encode(&self) -> Result<serde_json::Value, CodecError>;
    fn type_name(&self) -> &'static str;
}

impl<T: Data> ErasedData for T {
    fn encode(&self) -> Result<serde_json::Value, CodecError> {
        let error = |source| CodecError {
            action: "encode",
            type_name: std::any::type_name::<T>(),
            source,
        };
        let json = crate::exact::to_json(self).map_err(error)?;
        crate::exact::round_trips(&json, serde_json::from_value::<T>, |back| {
            crate::exact::to_json(back)
        })
        .map_err(error)?;
        Ok(json)
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A type-erased value: what a task produced or what a run was given.
///
/// Cloning a `Value` clones a pointer, never the data. A primitive number, a
/// `bool` or a `char` is kept in the `Value` itself: making one allocates
/// nothing and cloning it copies it.
///
/// ```
/// use flow::Value;
/// let v = Value::new(41u64);
/// assert_eq!(v.downcast_ref::<u64>(), Some(&41));
/// assert_eq!(v.downcast_ref::<u32>(), None);
/// assert_eq!(format!("{v:?}"), "41");
/// assert_eq!(v.encode().unwrap(), serde_json::json!(41));
///
/// let s = Value::new(String::from("db-1"));
/// assert_eq!(s.downcast_ref::<String>().map(String::as_str), Some("db-1"));
/// assert_eq!(s.type_name(), "alloc::string::String");
/// ```
#[derive(Clone)]
pub struct Value(Repr);

/// Declares how a [`Value`] holds its data: shared behind a pointer, or one
/// of the listed primitive types in place.
macro_rules! value_repr {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        #[derive(Clone)]
        enum Repr {
            Shared(Arc<dyn ErasedData>),
            $($variant($ty),)*
        }

        impl Repr {
            fn new<T: Data>(value: T) -> Self {
                // Each test is on `T` alone, so all but one fold away.
                let any: &dyn Any = &value;
                $(
                    if let Some(&x) = any.downcast_ref::<$ty>() {
                        return Repr::$variant(x);
                    }
                )*
                Repr::Shared(Arc::new(value))
            }

            fn data(&self) -> &dyn ErasedData {
                match self {
                    Repr::Shared(data) => &**data,
                    $(Repr::$variant(x) => x,)*
                }
            }

            /// The value as a `T`: for a primitive `T` one comparison of the
            /// variant, with no call through the vtable (a primitive is never
            /// shared, see [`Repr::new`]).
            fn downcast_ref<T: Any>(&self) -> Option<&T> {
                // Each test is on `T` alone, so all but one fold away.
                $(
                    if TypeId::of::<T>() == TypeId::of::<$ty>() {
                        let Repr::$variant(x) = self else {
                            return None;
                        };
                        let any: &dyn Any = x;
                        return any.downcast_ref::<T>();
                    }
                )*
                match self {
                    Repr::Shared(data) => {
                        let any: &dyn Any = &**data;
                        any.downcast_ref::<T>()
                    }
                    _ => None,
                }
            }

            /// The wrapped value's type: no call through the vtable for a
            /// primitive.
            fn type_id(&self) -> TypeId {
                match self {
                    Repr::Shared(data) => {
                        let any: &dyn Any = &**data;
                        any.type_id()
                    }
                    $(Repr::$variant(_) => TypeId::of::<$ty>(),)*
                }
            }
        }
    };
}

value_repr!(
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    Usize(usize),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Isize(isize),
    F32(f32),
    F64(f64),
    Bool(bool),
    Char(char),
    Unit(()),
);

impl Value {
    /// Wraps a value.
    pub fn new<T: Data>(value: T) -> Self {
        Value(Repr::new(value))
    }

    /// The value as a `T`, if it is one.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// Whether the value is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.downcast_ref::<T>().is_some()
    }

    /// The [`TypeId`] of the wrapped value.
    pub fn type_id(&self) -> TypeId {
        self.0.type_id()
    }

    /// The name of the wrapped value's type.
    pub fn type_name(&self) -> &'static str {
        self.0.data().type_name()
    }

    /// Encodes the value to JSON, exactly: decoding the JSON gives back the
    /// same value.
    ///
    /// # Errors
    /// When the type's `Serialize` implementation fails (for example a map
    /// with keys that are not strings), and for what JSON cannot hold exactly:
    /// a float that is not finite, `Some` of a value written as `null`
    /// (`Some(None)` reads back as `None`), a number out of JSON's range, or
    /// a value that reads back as another.
    ///
    /// ```
    /// use flow::Value;
    /// assert_eq!(Value::new(vec![1.5f64]).encode().unwrap(), serde_json::json!([1.5]));
    /// assert!(Value::new(f64::NAN).encode().is_err());
    /// assert!(Value::new(Some(None::<u8>)).encode().is_err());
    /// ```
    pub fn encode(&self) -> Result<serde_json::Value, CodecError> {
        self.0.data().encode()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.data(), f)
    }
}

/// A set of named values: the inputs handed to a run (its *store*), or the symbols
/// visible after it.
///
/// ```
/// use flow::Store;
/// let mut store = Store::new();
/// store.insert("y", 2u32).insert("name", String::from("db"));
/// assert_eq!(store.get::<u32>("y"), Some(&2));
/// assert_eq!(store.get::<u64>("y"), None);
/// assert_eq!(store.len(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Store {
    values: BTreeMap<String, Value>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Store::default()
    }

    /// Sets `name` to `value`, replacing what was there.
    pub fn insert<T: Data>(&mut self, name: impl Into<String>, value: T) -> &mut Self {
        self.values.insert(name.into(), Value::new(value));
        self
    }

    /// Sets `name` to an already wrapped value.
    pub fn insert_value(&mut self, name: impl Into<String>, value: Value) -> &mut Self {
        self.values.insert(name.into(), value);
        self
    }

    /// The value named `name`, if there is one of type `T`.
    pub fn get<T: Any>(&self, name: &str) -> Option<&T> {
        self.values.get(name).and_then(Value::downcast_ref)
    }

    /// The value named `name`, whatever its type.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// How many values the store holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The names and values, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Each value's `Debug` text, ordered by name: handy in assertions.
    ///
    /// ```
    /// use flow::Store;
    /// let mut store = Store::new();
    /// store.insert("x", 2u32).insert("s", "a".to_string());
    /// assert_eq!(store.debug_map(), [("s".to_string(), "\"a\"".to_string()), ("x".to_string(), "2".to_string())].into());
    /// ```
    pub fn debug_map(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:?}")))
            .collect()
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Store {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        Store {
            values: iter.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Repr, Value};

    /// Checks that `x` is kept in place and reads back as itself, by type,
    /// by name, as JSON and as text.
    fn check_inline<T: super::Data + PartialEq + Copy>(x: T, json: serde_json::Value, text: &str) {
        let v = Value::new(x);
        assert!(!matches!(v.0, Repr::Shared(_)), "{text} is kept in place");
        assert_eq!(v.downcast_ref::<T>(), Some(&x));
        assert_eq!(v.type_id(), std::any::TypeId::of::<T>());
        assert_eq!(v.type_name(), std::any::type_name::<T>());
        assert_eq!(v.encode().expect("encodes"), json);
        assert_eq!(format!("{v:?}"), text);
        assert_eq!(v.clone().downcast_ref::<T>(), Some(&x));
    }

    #[test]
    fn primitives_are_kept_in_place_and_read_back_as_themselves() {
        check_inline(7u8, 7.into(), "7");
        check_inline(300u16, 300.into(), "300");
        check_inline(70_000u32, 70_000.into(), "70000");
        check_inline(u64::MAX, u64::MAX.into(), "18446744073709551615");
        check_inline(12usize, 12.into(), "12");
        check_inline(-7i8, (-7).into(), "-7");
        check_inline(-300i16, (-300).into(), "-300");
        check_inline(-70_000i32, (-70_000).into(), "-70000");
        check_inline(i64::MIN, i64::MIN.into(), "-9223372036854775808");
        check_inline(-12isize, (-12).into(), "-12");
        check_inline(1.5f32, 1.5.into(), "1.5");
        check_inline(-2.25f64, (-2.25).into(), "-2.25");
        check_inline(true, true.into(), "true");
        check_inline('é', "é".into(), "'é'");
        check_inline((), serde_json::Value::Null, "()");
    }

    #[test]
    fn a_primitive_is_not_taken_for_another() {
        let v = Value::new(5u32);
        assert_eq!(v.downcast_ref::<u64>(), None);
        assert_eq!(v.downcast_ref::<i32>(), None);
        assert!(v.is::<u32>());
        assert!(!v.is::<u64>());
    }

    #[test]
    fn other_values_are_shared_by_clones() {
        let v = Value::new(vec![1u8, 2]);
        let w = v.clone();
        let (Repr::Shared(a), Repr::Shared(b)) = (&v.0, &w.0) else {
            panic!("a Vec is kept behind a pointer");
        };
        assert!(std::sync::Arc::ptr_eq(a, b));
        assert_eq!(w.downcast_ref::<Vec<u8>>(), Some(&vec![1, 2]));
        assert_eq!(format!("{w:?}"), "[1, 2]");
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }
}
