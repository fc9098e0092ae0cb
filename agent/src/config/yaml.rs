//! YAML → raw structs, with errors that carry the field path and the line and column: the
//! shared [`ferry_proto::yaml`] deserializer, its diagnostics wrapped as [`ConfigError::Yaml`].

use serde::de::DeserializeOwned;

use super::error::ConfigError;

/// Deserializes the single YAML document in `text`.
pub(crate) fn from_yaml<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    ferry_proto::yaml::from_yaml(text, file).map_err(ConfigError::Yaml)
}

/// Deserializes only element `index` of the sequence found under the mapping keys `keys`
/// (`["spec", "targets"]`), skipping everything else, so one bad element does not hide the
/// others. `Ok(None)` when there is no such element.
pub(crate) fn element_from_yaml<T: DeserializeOwned>(
    text: &str,
    file: &str,
    keys: &[&str],
    index: usize,
) -> Result<Option<T>, ConfigError> {
    ferry_proto::yaml::element_from_yaml(text, file, keys, index).map_err(ConfigError::Yaml)
}

/// Deserializes the whole sequence under `keys` in one pass; the first bad element fails it.
/// `Ok(None)` when there is no such sequence.
pub(crate) fn sequence_from_yaml<T: DeserializeOwned>(
    text: &str,
    file: &str,
    keys: &[&str],
) -> Result<Option<Vec<T>>, ConfigError> {
    ferry_proto::yaml::sequence_from_yaml(text, file, keys).map_err(ConfigError::Yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        items: Vec<String>,
    }

    #[test]
    fn shape_errors_are_config_yaml_errors_with_the_field() {
        let err = from_yaml::<Doc>("items: []\nitmes: []\n", "x.yaml").unwrap_err();
        assert!(matches!(err, ConfigError::Yaml(_)), "{err:?}");
        assert_eq!(err.field(), "itmes");
        assert!(
            err.to_string()
                .starts_with("x.yaml:2:1: itmes: unknown field"),
            "{err}"
        );
    }
}
