//! Setting one key of a mapping while dropping another: the shared move of the kustomize and
//! Helm editors ("switching to a digest drops the tag key and puts the digest where the tag was").

use super::error::EditError;
use super::path::{Path, Segment};
use super::scalar::tag_slot_at;
use super::splice::{delete_pair, insert_pairs, rename_key, set_scalar};
use super::tree::Node;
use super::verify::Expect;
use super::Plan;

/// A key in a mapping that may or may not be there yet.
pub(crate) struct KeyRef<'n> {
    pub doc: usize,
    pub map: &'n Node,
    pub map_path: Path,
    pub key: String,
}

impl<'n> KeyRef<'n> {
    pub fn path(&self) -> Path {
        self.map_path.child(Segment::Key(self.key.clone()))
    }

    /// The pair index and value, when the key exists.
    pub fn existing(&self) -> Result<Option<(usize, &'n Node)>, EditError> {
        if self.map.is_duplicated(&self.key) {
            return Err(EditError::DuplicateKey {
                path: self.path().to_string(),
            });
        }
        Ok(self.map.get(&self.key))
    }

    /// The current value as text, when the key exists and holds a tag-like scalar.
    pub fn current(&self, text: &str) -> Result<Option<String>, EditError> {
        match self.existing()? {
            Some((_, node)) => Ok(Some(tag_slot_at(node, text, &self.path())?.value.clone())),
            None => Ok(None),
        }
    }
}

/// Sets `target` to `value`. When `drop` exists it goes away: if `target` is missing from the
/// same mapping, `drop`'s pair is renamed in place (so the new key sits where the old one was),
/// otherwise `drop` is deleted. A missing `target` is added at the end of its mapping.
pub(crate) fn put(
    plan: &mut Plan,
    text: &str,
    target: &KeyRef<'_>,
    value: &str,
    drop: Option<&KeyRef<'_>>,
) -> Result<(), EditError> {
    let dropped = match drop {
        Some(d) => d.existing()?.map(|(i, node)| (d, i, node)),
        None => None,
    };
    if let Some((d, _, node)) = dropped {
        tag_slot_at(node, text, &d.path())?;
    }
    match (target.existing()?, dropped) {
        (Some((_, node)), _) => {
            tag_slot_at(node, text, &target.path())?;
            set_scalar(&mut plan.splices, text, node, &target.path(), value)?;
            if let Some((d, i, _)) = dropped {
                delete_pair(&mut plan.splices, text, d.map, i, &d.map_path)?;
            }
        }
        (None, Some((d, i, node))) if std::ptr::eq(d.map, target.map) => {
            rename_key(&mut plan.splices, text, d.map, i, &target.key, &d.map_path)?;
            set_scalar(&mut plan.splices, text, node, &d.path(), value)?;
        }
        (None, dropped) => {
            insert_pairs(
                &mut plan.splices,
                text,
                target.map,
                &target.map_path,
                &[(&target.key, value)],
            )?;
            if let Some((d, i, _)) = dropped {
                delete_pair(&mut plan.splices, text, d.map, i, &d.map_path)?;
            }
        }
    }
    plan.expect.push(Expect {
        doc: target.doc,
        path: target.path(),
        value: Some(value.to_string()),
    });
    if let Some((d, _, _)) = dropped {
        plan.expect.push(Expect {
            doc: d.doc,
            path: d.path(),
            value: None,
        });
    }
    Ok(())
}
