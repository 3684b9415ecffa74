//! Exact JSON: values encoded for the journal must read back as they were.
//!
//! serde_json writes some values in a way that reads back as another value:
//! a float that is not finite becomes `null` (and then fails to decode), and
//! `Some(x)` where `x` is itself written as `null` (`Some(None)`, `Some(())`)
//! reads back as `None`. [`to_json`] refuses those, at any depth, with a
//! message that names the value; [`round_trips`] then decodes what was
//! written and writes it again, which catches the rest (numbers out of
//! JSON's range, map keys that do not come back, types whose `Serialize` and
//! `Deserialize` disagree).

use std::fmt::Display;

use serde::ser::{self, Impossible, Serialize, Serializer};

/// `value` as JSON, or an error for anything that would not read back as it
/// was written.
pub(crate) fn to_json<T: Serialize + ?Sized>(
    value: &T,
) -> Result<serde_json::Value, serde_json::Error> {
    value.serialize(Exact(serde_json::value::Serializer))
}

/// Whether `json`, decoded by `decode` and encoded again, is still `json`.
pub(crate) fn round_trips<T>(
    json: &serde_json::Value,
    decode: impl FnOnce(serde_json::Value) -> Result<T, serde_json::Error>,
    encode: impl FnOnce(&T) -> Result<serde_json::Value, serde_json::Error>,
) -> Result<(), serde_json::Error> {
    let back = decode(json.clone())?;
    let again = encode(&back)?;
    if again == *json {
        Ok(())
    } else {
        Err(ser::Error::custom(format!(
            "it would not read back as it was written: `{json}` reads back as `{again}`"
        )))
    }
}

fn refuse<E: ser::Error>(what: impl Display) -> E {
    E::custom(format_args!(
        "{what} cannot be stored exactly in the journal's JSON"
    ))
}

/// Wraps a serializer so that every value under it is checked too.
struct Exact<S>(S);

/// A value to serialize with the check.
struct Checked<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Checked<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Exact(serializer))
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Exact<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Exact<S::SerializeSeq>;
    type SerializeTuple = Exact<S::SerializeTuple>;
    type SerializeTupleStruct = Exact<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Exact<S::SerializeTupleVariant>;
    type SerializeMap = Exact<S::SerializeMap>;
    type SerializeStruct = Exact<S::SerializeStruct>;
    type SerializeStructVariant = Exact<S::SerializeStructVariant>;

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        if v.contains('\0') {
            return Err(refuse(
                "a string holding the character U+0000 (PostgreSQL's JSONB cannot hold it)",
            ));
        }
        self.0.serialize_str(v)
    }

    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        if v == '\0' {
            return Err(refuse(
                "the character U+0000 (PostgreSQL's JSONB cannot hold it)",
            ));
        }
        self.0.serialize_char(v)
    }

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if !v.is_finite() {
            return Err(refuse(format_args!("the float {v}")));
        }
        self.0.serialize_f32(v)
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        if !v.is_finite() {
            return Err(refuse(format_args!("the float {v}")));
        }
        self.0.serialize_f64(v)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        if value.serialize(IsNull).unwrap_or(false) {
            return Err(refuse(
                "`Some` of a value written as null (such as `Some(None)` or `Some(())`), \
                 which reads back as `None`,",
            ));
        }
        self.0.serialize_some(&Checked(value))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Checked(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Checked(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Exact)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Exact)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Exact)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Exact)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Exact)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Exact)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Exact)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident) => {
        impl<S: ser::$trait> ser::$trait for Exact<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
                self.0.$method(&Checked(value))
            }

            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

impl<S: ser::SerializeMap> ser::SerializeMap for Exact<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Checked(key))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Checked(value))
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

macro_rules! fields {
    ($trait:ident) => {
        impl<S: ser::$trait> ser::$trait for Exact<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), S::Error> {
                self.0.serialize_field(key, &Checked(value))
            }

            fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
                self.0.skip_field(key)
            }

            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    };
}

fields!(SerializeStruct);
fields!(SerializeStructVariant);

/// Says whether a value is written as JSON `null`, looking no deeper than it
/// must: a compound value is not null, and answers at once.
struct IsNull;

/// Stops [`IsNull`] at the first sign that the value is not null.
#[derive(Debug)]
struct NotNull;

impl Display for NotNull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not null")
    }
}

impl std::error::Error for NotNull {}

impl ser::Error for NotNull {
    fn custom<T: Display>(_: T) -> Self {
        NotNull
    }
}

macro_rules! not_null {
    ($($method:ident($($ty:ty),*);)*) => {$(
        fn $method(self, $(_: $ty),*) -> Result<bool, NotNull> {
            Ok(false)
        }
    )*};
}

impl Serializer for IsNull {
    type Ok = bool;
    type Error = NotNull;
    type SerializeSeq = Impossible<bool, NotNull>;
    type SerializeTuple = Impossible<bool, NotNull>;
    type SerializeTupleStruct = Impossible<bool, NotNull>;
    type SerializeTupleVariant = Impossible<bool, NotNull>;
    type SerializeMap = Impossible<bool, NotNull>;
    type SerializeStruct = Impossible<bool, NotNull>;
    type SerializeStructVariant = Impossible<bool, NotNull>;

    not_null! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    // serde_json writes these as `null`.
    fn serialize_f32(self, v: f32) -> Result<bool, NotNull> {
        Ok(!v.is_finite())
    }

    fn serialize_f64(self, v: f64) -> Result<bool, NotNull> {
        Ok(!v.is_finite())
    }

    fn serialize_none(self) -> Result<bool, NotNull> {
        Ok(true)
    }

    fn serialize_unit(self) -> Result<bool, NotNull> {
        Ok(true)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<bool, NotNull> {
        Ok(true)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<bool, NotNull> {
        value.serialize(IsNull)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<bool, NotNull> {
        value.serialize(IsNull)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotNull> {
        Ok(false)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotNull> {
        Err(NotNull)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotNull> {
        Err(NotNull)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotNull> {
        Err(NotNull)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNull> {
        Err(NotNull)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotNull> {
        Err(NotNull)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotNull> {
        Err(NotNull)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotNull> {
        Err(NotNull)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::{round_trips, to_json};

    fn exact<T>(v: &T) -> Result<serde_json::Value, String>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let json = to_json(v).map_err(|e| e.to_string())?;
        round_trips(&json, serde_json::from_value::<T>, |b| to_json(b))
            .map_err(|e| e.to_string())?;
        Ok(json)
    }

    #[test]
    fn plain_values_are_written_as_serde_json_writes_them() {
        assert_eq!(exact(&41u64), Ok(serde_json::json!(41)));
        assert_eq!(exact(&-0.5f64), Ok(serde_json::json!(-0.5)));
        assert_eq!(exact(&Some(3u8)), Ok(serde_json::json!(3)));
        assert_eq!(exact(&None::<u8>), Ok(serde_json::json!(null)));
        assert_eq!(
            exact(&vec![Some(1u8), None]),
            Ok(serde_json::json!([1, null]))
        );
        assert_eq!(exact(&u64::MAX), Ok(serde_json::json!(u64::MAX)));
        assert_eq!(
            exact(&i128::from(i64::MIN)),
            Ok(serde_json::json!(i64::MIN))
        );
        let map: HashMap<String, u32> = (0..20).map(|i| (format!("k{i}"), i)).collect();
        assert_eq!(
            exact(&map).map(|j| j.as_object().map(|o| o.len())),
            Ok(Some(20))
        );
        let keyed: BTreeMap<u32, u32> = [(1, 2), (3, 4)].into();
        assert_eq!(exact(&keyed), Ok(serde_json::json!({"1": 2, "3": 4})));
    }

    #[test]
    fn what_would_read_back_otherwise_is_refused() {
        let not_exact = " cannot be stored exactly in the journal's JSON";
        assert_eq!(
            exact(&f64::INFINITY),
            Err(format!("the float inf{not_exact}"))
        );
        assert_eq!(exact(&f32::NAN), Err(format!("the float NaN{not_exact}")));
        assert_eq!(
            exact(&vec![1.0, f64::NEG_INFINITY]),
            Err(format!("the float -inf{not_exact}"))
        );
        let some_none = "`Some` of a value written as null (such as `Some(None)` or `Some(())`), \
                         which reads back as `None`,";
        assert_eq!(
            exact(&Some(None::<u8>)),
            Err(format!("{some_none}{not_exact}"))
        );
        assert_eq!(exact(&Some(())), Err(format!("{some_none}{not_exact}")));
        assert_eq!(
            exact(&vec![Some(Some(None::<u8>))]),
            Err(format!("{some_none}{not_exact}"))
        );
        assert_eq!(exact(&Some(Some(1u8))), Ok(serde_json::json!(1)));
        assert_eq!(exact(&u128::MAX), Err("number out of range".into()));
        assert_eq!(exact(&i128::MIN), Err("number out of range".into()));
        let tuple_keys: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert_eq!(exact(&tuple_keys), Err("key must be a string".into()));
        let nul = "a string holding the character U+0000 (PostgreSQL's JSONB cannot hold it)";
        assert_eq!(exact(&"a\0b".to_string()), Err(format!("{nul}{not_exact}")));
        let keyed: BTreeMap<String, u8> = [("k\0".to_string(), 1)].into();
        assert_eq!(exact(&keyed), Err(format!("{nul}{not_exact}")));
        assert_eq!(
            exact(&'\0'),
            Err(format!(
                "the character U+0000 (PostgreSQL's JSONB cannot hold it){not_exact}"
            ))
        );
    }
}
