use ciborium::Value;

/// A simple typed value carried in claims: device facts, entity attributes, context claims.
///
/// Deliberately limited to what Cedar policies compare directly (no floats, no nesting), so
/// every value has exactly one encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttributeValue {
    /// UTF-8 text.
    Text(String),
    /// A signed 64-bit integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl AttributeValue {
    /// The CBOR form of this value.
    pub fn to_cbor(&self) -> Value {
        match self {
            AttributeValue::Text(t) => Value::Text(t.clone()),
            AttributeValue::Int(i) => Value::Integer((*i).into()),
            AttributeValue::Bool(b) => Value::Bool(*b),
        }
    }

    /// Reads a value from CBOR; `None` for any other CBOR type or an integer outside i64.
    pub fn from_cbor(value: Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(AttributeValue::Text(t)),
            Value::Integer(i) => i64::try_from(i).ok().map(AttributeValue::Int),
            Value::Bool(b) => Some(AttributeValue::Bool(b)),
            _ => None,
        }
    }

    /// Parses the command-line form: `true`/`false`, a decimal integer, or else text.
    pub fn parse_loose(text: &str) -> Self {
        match text {
            "true" => AttributeValue::Bool(true),
            "false" => AttributeValue::Bool(false),
            _ => text
                .parse::<i64>()
                .map(AttributeValue::Int)
                .unwrap_or_else(|_| AttributeValue::Text(text.to_owned())),
        }
    }
}

impl std::fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttributeValue::Text(t) => write!(f, "{t:?}"),
            AttributeValue::Int(i) => write!(f, "{i}"),
            AttributeValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_parsing_picks_the_narrowest_type() {
        assert_eq!(AttributeValue::parse_loose("true"), AttributeValue::Bool(true));
        assert_eq!(AttributeValue::parse_loose("-42"), AttributeValue::Int(-42));
        assert_eq!(AttributeValue::parse_loose("eu-1"), AttributeValue::Text("eu-1".into()));
    }

    #[test]
    fn cbor_round_trip_and_refusals() {
        for v in
            [AttributeValue::Text("x".into()), AttributeValue::Int(i64::MIN), AttributeValue::Bool(false)]
        {
            assert_eq!(AttributeValue::from_cbor(v.to_cbor()), Some(v));
        }
        assert_eq!(AttributeValue::from_cbor(Value::Float(1.0)), None);
        assert_eq!(AttributeValue::from_cbor(Value::Integer(u64::MAX.into())), None);
        assert_eq!(AttributeValue::from_cbor(Value::Array(vec![])), None);
    }
}
