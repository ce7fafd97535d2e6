//! The list, hash and sorted-set encodings Redis wrote before 7.0, which Redis 7.x still loads and
//! converts on the way in, so RDB files and `DUMP` payloads of older servers load here too:
//!
//! | type                             | written by  | value                                    |
//! |----------------------------------|-------------|------------------------------------------|
//! | `RDB_TYPE_LIST` (1)              | before 3.2  | a count, then the elements as strings    |
//! | `RDB_TYPE_LIST_ZIPLIST` (10)     | before 3.2  | one [`ziplist`](super::ziplist) string   |
//! | `RDB_TYPE_LIST_QUICKLIST` (14)   | 3.2 to 6.2  | a node count, then a ziplist string each |
//! | `RDB_TYPE_HASH_ZIPMAP` (9)       | before 2.6  | one [`zipmap`](super::zipmap) string     |
//! | `RDB_TYPE_HASH_ZIPLIST` (13)     | 2.6 to 6.2  | one ziplist string: field, value, ...    |
//! | `RDB_TYPE_ZSET_ZIPLIST` (12)     | 2.6 to 6.2  | one ziplist string: member, score, ...   |
//!
//! Lists come out as listpack nodes packed to [`NODE_BYTES`] (the old node boundaries mean
//! nothing to us), hashes as field/value pairs. As Redis 7.0's `RESTORE` does, we refuse
//! empty collections, quicklist nodes of zero bytes, hash ziplists with an odd entry count,
//! and duplicate fields (an integer entry and a string entry with the same text are the same
//! field). An empty ziplist inside a quicklist is skipped, as Redis skips it.

use super::ziplist::Ziplist;
use super::zipmap::Zipmap;
use super::{read_count, unique_fields, RdbError, RdbValue, Reader};
use crate::listpack::{self, Listpack, LpValue};

/// The listpack bytes a list node is filled to: the node size of Redis's default
/// `list-max-listpack-size` (-2). A single larger element gets a node of its own.
pub const NODE_BYTES: usize = 8192;

/// Packs list elements, in order, into listpack nodes of at most [`NODE_BYTES`].
struct Nodes {
    full: Vec<Listpack>,
    open: Listpack,
}

impl Nodes {
    fn new() -> Nodes {
        Nodes { full: Vec::new(), open: Listpack::new() }
    }

    fn push(&mut self, e: &[u8]) {
        if !self.open.is_empty() && self.open.bytes() + listpack::entry_size(e) > NODE_BYTES {
            self.full.push(std::mem::take(&mut self.open));
        }
        self.open.push_back(e);
    }

    fn push_value(&mut self, v: LpValue<'_>) {
        v.with_bytes(|b| self.push(b));
    }

    /// The list, refused when it has no elements (Redis refuses an empty key).
    fn finish(mut self, offset: usize) -> Result<RdbValue, RdbError> {
        if !self.open.is_empty() {
            self.full.push(self.open);
        }
        if self.full.is_empty() {
            return Err(RdbError::BadValue { offset, what: "empty list" });
        }
        Ok(RdbValue::List(self.full))
    }
}

/// A ziplist blob read at `offset`, validated.
fn ziplist(blob: &[u8], offset: usize) -> Result<Ziplist<'_>, RdbError> {
    Ziplist::parse(blob).map_err(|e| RdbError::BadValue { offset, what: e.what() })
}

/// `RDB_TYPE_LIST`: a count, then each element as a string.
pub(super) fn read_list(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let n = read_count(r)?;
    let mut nodes = Nodes::new();
    for _ in 0..n {
        nodes.push(&r.read_string()?);
    }
    nodes.finish(offset)
}

/// `RDB_TYPE_LIST_ZIPLIST`: the whole list in one ziplist.
pub(super) fn read_list_ziplist(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let blob = r.read_string()?;
    let mut nodes = Nodes::new();
    ziplist(&blob, offset)?.iter().for_each(|v| nodes.push_value(v));
    nodes.finish(offset)
}

/// `RDB_TYPE_LIST_QUICKLIST`: a node count, then each node as a ziplist.
pub(super) fn read_quicklist(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let n = read_count(r)?;
    let mut nodes = Nodes::new();
    for _ in 0..n {
        let at = r.position();
        let blob = r.read_string()?;
        if blob.is_empty() {
            return Err(RdbError::BadValue { offset: at, what: "quicklist node of zero bytes" });
        }
        ziplist(&blob, at)?.iter().for_each(|v| nodes.push_value(v));
    }
    nodes.finish(offset)
}

/// `RDB_TYPE_HASH_ZIPLIST`: field, value, ... in one ziplist.
pub(super) fn read_hash_ziplist(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let blob = r.read_string()?;
    let zl = ziplist(&blob, offset)?;
    if zl.len() % 2 != 0 {
        return Err(RdbError::BadValue { offset, what: "hash ziplist with an odd count" });
    }
    let mut pairs = Vec::with_capacity(zl.len() / 2);
    let mut it = zl.iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        pairs.push((f.to_vec(), v.to_vec()));
    }
    unique_fields(pairs, offset)
}

/// `RDB_TYPE_ZSET_ZIPLIST`: member, score, ... in one ziplist.
pub(super) fn read_zset_ziplist(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let blob = r.read_string()?;
    let zl = ziplist(&blob, offset)?;
    super::scored_pairs(zl.iter(), zl.len(), offset)
}

/// `RDB_TYPE_HASH_ZIPMAP`: the pairs of one zipmap.
pub(super) fn read_hash_zipmap(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let blob = r.read_string()?;
    let zm = Zipmap::parse(&blob).map_err(|e| RdbError::BadValue { offset, what: e.what() })?;
    unique_fields(zm.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect(), offset)
}

#[cfg(test)]
mod tests {
    use super::super::encoding::{self, write_len, write_string};
    use super::super::ziplist::build::{self as zl, Enc};
    use super::super::zipmap::build as zm;
    use super::super::{decode_value, payload, restore_payload, RestoreError};
    use super::*;
    use proptest::prelude::*;

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    /// The elements of a decoded list, after checking its nodes: none empty, each packed as
    /// full as [`NODE_BYTES`] allows and no fuller unless it holds a single element.
    fn elements(v: &RdbValue) -> Vec<Vec<u8>> {
        let RdbValue::List(nodes) = v else { panic!("not a list: {v:?}") };
        for (i, node) in nodes.iter().enumerate() {
            assert!(!node.is_empty(), "node {i} is empty");
            assert!(node.bytes() <= NODE_BYTES || node.len() == 1, "node {i} holds {} bytes", node.bytes());
            if let Some(next) = nodes.get(i + 1) {
                let first = next.iter().next().unwrap().to_vec();
                assert!(node.bytes() + listpack::entry_size(&first) > NODE_BYTES, "node {i} could take more");
            }
        }
        nodes.iter().flat_map(|n| n.iter().map(|v| v.to_vec())).collect()
    }

    fn pairs(v: &RdbValue) -> Pairs {
        let RdbValue::Hash(p) = v else { panic!("not a hash: {v:?}") };
        p.clone()
    }

    fn texts<T: AsRef<[u8]>>(items: &[T]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_ref().to_vec()).collect()
    }

    fn text_pairs(items: &[(&str, &str)]) -> Pairs {
        items.iter().map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    /// Type byte, then one string holding `blob` (LZF-compressed when `compress` and it pays,
    /// as Redis writes these strings).
    fn blob_body(type_byte: u8, blob: &[u8], compress: bool) -> Vec<u8> {
        let mut out = vec![type_byte];
        write_string(&mut out, blob, compress);
        out
    }

    /// A quicklist (type 14) body of ziplist nodes.
    fn quicklist_body(nodes: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![encoding::RDB_TYPE_LIST_QUICKLIST];
        write_len(&mut out, nodes.len() as u64);
        for n in nodes {
            write_string(&mut out, n, true);
        }
        out
    }

    /// A plain list (type 1) body.
    fn list_body<T: AsRef<[u8]>>(elems: &[T]) -> Vec<u8> {
        let mut out = vec![encoding::RDB_TYPE_LIST];
        write_len(&mut out, elems.len() as u64);
        for e in elems {
            write_string(&mut out, e.as_ref(), true);
        }
        out
    }

    fn restore(body: &[u8]) -> Result<RdbValue, RestoreError> {
        restore_payload(&payload::wrap(body.to_vec()))
    }

    fn refused(r: Result<RdbValue, RestoreError>) -> bool {
        matches!(r, Err(RestoreError::BadData(_)))
    }

    /// Decodes one key of an RDB file excerpt (type byte, key, value) and returns the key,
    /// the value, and the byte after it.
    fn file_entry(bytes: &[u8]) -> (Vec<u8>, Result<RdbValue, RdbError>, Option<u8>) {
        let mut r = Reader::new(bytes);
        let t = r.read_u8().unwrap();
        let key = r.read_string().unwrap();
        let v = decode_value(t, &mut r);
        let after = r.read_u8().ok();
        (key, v, after)
    }

    /// Keys from Redis's own test data, `tests/assets/*.rdb` (the bytes as reproduced in
    /// apache/kvrocks `tests/cppunit/rdb_util.h`), each copied from its type byte to the end
    /// of its value, with the byte that follows it in the file.
    #[test]
    fn decodes_keys_from_redis_rdb_files() {
        // encodings.rdb (RDB 4): "list_zipped", a ziplist list.
        let (key, v, after) = file_entry(
            b"\x0a\x0blist_zipped\x30\x30\x00\x00\x00\x25\x00\x00\x00\x08\x00\x00\xc0\x01\x00\x04\xc0\x02\x00\x04\
              \xc0\x03\x00\x04\x01a\x03\x01b\x03\x01c\x03\xd0\xa0\x86\x01\x00\x06\xe0\x00\xbc\xa0\x65\x01\x00\x00\x00\xff\
              \x00",
        );
        assert_eq!((key.as_slice(), after), (&b"list_zipped"[..], Some(0)));
        assert_eq!(elements(&v.unwrap()), texts(&["1", "2", "3", "a", "b", "c", "100000", "6000000000"]));

        // encodings.rdb: "hash_zipped", a ziplist hash.
        let (key, v, after) = file_entry(
            b"\x0d\x0bhash_zipped\x20\x20\x00\x00\x00\x1b\x00\x00\x00\x06\x00\x00\x01a\x03\xc0\x01\x00\x04\x01b\x03\
              \xc0\x02\x00\x04\x01c\x03\xc0\x03\x00\xff\x0c",
        );
        assert_eq!((key.as_slice(), after), (&b"hash_zipped"[..], Some(0x0c)));
        assert_eq!(pairs(&v.unwrap()), text_pairs(&[("a", "1"), ("b", "2"), ("c", "3")]));

        // encodings.rdb: "list", a plain list of 24 strings, some integer-encoded.
        let once: &[u8] = b"\xc0\x01\xc0\x02\xc0\x03\x01a\x01b\x01c\xc2\xa0\x86\x01\x00\x0a6000000000";
        let (key, v, after) = file_entry(&[&b"\x01\x04list\x18"[..], once, once, once, b"\x0d"].concat());
        assert_eq!((key.as_slice(), after), (&b"list"[..], Some(0x0d)));
        let three: Vec<&str> = ["1", "2", "3", "a", "b", "c", "100000", "6000000000"].repeat(3);
        assert_eq!(elements(&v.unwrap()), texts(&three));

        // encodings.rdb: "hash", a plain hash (the type this build already read).
        let (key, v, after) = file_entry(
            b"\x04\x04hash\x0b\x01b\xc0\x02\x02aa\xc0\x0a\x01c\xc0\x03\x03aaa\xc0\x64\x02bb\xc0\x14\x02cc\xc0\x1e\
              \x03bbb\xc1\xc8\x00\x03ccc\xc1\x2c\x01\x03ddd\xc1\x90\x01\x03eee\x0a5000000000\x01a\xc0\x01\xff",
        );
        assert_eq!((key.as_slice(), after), (&b"hash"[..], Some(0xff)));
        let want = [
            ("b", "2"),
            ("aa", "10"),
            ("c", "3"),
            ("aaa", "100"),
            ("bb", "20"),
            ("cc", "30"),
            ("bbb", "200"),
            ("ccc", "300"),
            ("ddd", "400"),
            ("eee", "5000000000"),
            ("a", "1"),
        ];
        assert_eq!(pairs(&v.unwrap()), text_pairs(&want));

        // hash-zipmap.rdb (RDB 3): "hash", a zipmap.
        let (key, v, after) = file_entry(b"\x09\x04hash\x10\x02\x02f1\x02\x00v1\x02f2\x02\x00v2\xff\xff");
        assert_eq!((key.as_slice(), after), (&b"hash"[..], Some(0xff)));
        assert_eq!(pairs(&v.unwrap()), text_pairs(&[("f1", "v1"), ("f2", "v2")]));

        // hash-ziplist.rdb (RDB 9): "hash", a ziplist hash.
        let (key, v, after) = file_entry(
            b"\x0d\x04hash\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02f1\x04\x02v1\x04\x02f2\x04\x02v2\xff\xff",
        );
        assert_eq!((key.as_slice(), after), (&b"hash"[..], Some(0xff)));
        assert_eq!(pairs(&v.unwrap()), text_pairs(&[("f1", "v1"), ("f2", "v2")]));

        // list-quicklist.rdb (RDB 8, Redis 4.0.9): "list", a quicklist of one ziplist node.
        let (key, v, after) =
            file_entry(b"\x0e\x04list\x01\x0d\x0d\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\xf8\xff\x00");
        assert_eq!((key.as_slice(), after), (&b"list"[..], Some(0)));
        assert_eq!(elements(&v.unwrap()), texts(&["7"]));
    }

    /// corrupt_empty_keys.rdb: Redis skips these keys when loading the file and refuses them
    /// in `RESTORE`; the decoder refuses them (the list and hash ones).
    #[test]
    fn refuses_empty_keys_from_redis_rdb_file() {
        let keys: &[&[u8]] = &[
            b"\x04\x04hash\x00",
            b"\x0a\x0clist_ziplist\x0b\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff",
            b"\x10\x0chash_ziplist\x07\x07\x00\x00\x00\x00\x00\xff",
            b"\x0e\x0elist_quicklist\x00",
            b"\x0e\x1clist_quicklist_empty_ziplist\x01\x0b\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff",
        ];
        for k in keys {
            let (key, v, _) = file_entry(k);
            assert!(
                matches!(v, Err(RdbError::BadValue { what: "empty list" | "empty hash", .. })),
                "{}: {v:?}",
                String::from_utf8_lossy(&key)
            );
        }
    }

    /// `RESTORE` payloads from Redis's `tests/integration/corrupt-dump.tcl`, all refused by
    /// Redis with "Bad data format" (checked again against redis-server 7.0.15). Their CRCs
    /// are valid, so they go in whole.
    #[test]
    fn refuses_redis_corrupt_dump_payloads() {
        let cases: &[(&str, &[u8])] = &[
            (
                "#7445 - with sanitize",
                b"\x0e\x01\x1d\x1d\x00\x00\x00\x16\x00\x00\x00\x03\x00\x00\x04CCCC\x06\x04BBBB\x06\x3fAAAA\xff\
                  \x09\x00\x88\xa5\xca\xa8\xc5\x41\xf4\x35",
            ),
            (
                "hash with valid zip list header, invalid entry len",
                b"\x0d\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02a\x00\x04\x02b\x00\x04\x14c\x00\x04\x02d\x00\xff\
                  \x09\x00\xd9\x10\x54\x92\x15\xf5\x5f\x52",
            ),
            (
                "invalid zlbytes header",
                b"\x0d\x1b\x25\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02a\x00\x04\x02b\x00\x04\x02c\x00\x04\x02d\x00\xff\
                  \x09\x00\xb7\xf7\x6e\x9f\x43\x43\x14\xc6",
            ),
            (
                "valid zipped hash header, dup records",
                b"\x0d\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02a\x00\x04\x02b\x00\x04\x02a\x00\x04\x02d\x00\xff\
                  \x09\x00\xa1\x98\x36\x78\xcc\x8e\x93\x2e",
            ),
            (
                "quicklist big ziplist prev len",
                b"\x0e\x01\x13\x13\x00\x00\x00\x0e\x00\x00\x00\x02\x00\x00\x02a\x00\x0e\x02b\x00\xff\
                  \x09\x00\x49\x97\x30\xb2\x0d\xa1\xed\xaa",
            ),
            (
                "quicklist small ziplist prev len",
                b"\x0e\x01\x13\x13\x00\x00\x00\x0e\x00\x00\x00\x02\x00\x00\x02a\x00\x02\x02b\x00\xff\
                  \x09\x00\xc7\x71\x03\x97\x07\x75\xb0\x63",
            ),
            (
                "quicklist ziplist wrong count",
                b"\x0e\x01\x13\x13\x00\x00\x00\x0e\x00\x00\x00\x03\x00\x00\x02a\x00\x04\x02b\x00\xff\
                  \x09\x00\x4d\xe2\x0a\x2f\x08\x25\xdf\x91",
            ),
            (
                "#3080 - quicklist",
                b"\x0e\x01\x80\x00\x00\x00\x10AAAAAAAA\x02\x00\x00\x80AAAA\x07\x00\x03\xc7\x1d\xef\x54\x68\xcc\xf3",
            ),
            (
                "quicklist with empty ziplist",
                b"\x0e\x01\x0b\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff\x09\x00\xc2\x69\x37\x83\x3c\x7f\xfe\x6f",
            ),
            ("#3080 - ziplist", b"\x0a\x80\x00\x00\x00\x10AAAAAAAA\x02\x00\x00\x80AAAA\x07\x00\x39\x5b\x49\xe0\xc1\xc6\xdd\x76"),
            (
                "hash ziplist uneven record count",
                b"\x0d\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02a\x00\x04\x02b\x00\x04\x02a\x00\x04\x02d\x00\xff\
                  \x09\x00\xa1\x98\x36\x78\xcc\x8e\x93\x2e",
            ),
            ("hash empty zipmap", b"\x09\x02\x00\xff\x09\x00\xc0\xf1\xb8\x67\x4c\x16\xac\xe3"),
            (
                "OOM in rdbGenericLoadStringObject",
                b"\x0a\x81\x7f\xff\xff\xff\xff\xff\xff\xff\x13\x00\x00\x00\x0e\x00\x00\x00\x02\x00\x00\x02a\x00\x04\x02b\
                  \x00\xff\x09\x00\x57\x04\xe5\xcd\xd4\x37\x6c\x57",
            ),
            (
                "quicklist ziplist tail followed by extra data which start with 0xff",
                b"\x0e\x01\x11\x11\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\xf6\xff\xb0\x6c\x9c\xff\
                  \x09\x00\x9c\x37\x47\x49\x4d\xde\x94\xf5",
            ),
            (
                "invalid access in ziplist tail prevlen decoding",
                b"\x0e\x02\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\x02_9\x04\xf9\x02\x02_7\x04\xf7\x02\x02_5\xff\
                  \x19\x19\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\xf5\x02\x02_3\x04\xf3\x02\x02_1\xfe\xf1\xff\
                  \x0a\x00\x6b\x43\x32\x2f\xbb\x29\x0a\xbe",
            ),
        ];
        for (name, p) in cases {
            assert!(payload::verify(p, true).is_ok(), "{name}: trailer");
            assert!(refused(restore_payload(p)), "{name}");
        }
    }

    /// corrupt-dump.tcl cases run with the checksum check switched off: their bodies,
    /// given a valid trailer. The last ("hash crash") is valid and restores.
    #[test]
    fn redis_fuzzer_findings() {
        let bad: &[(&str, &[u8])] = &[
            (
                "NPD in quicklistIndex",
                b"\x0e\x01\x13\x13\x00\x00\x00\x10\x00\x00\x00\x03\x12\x00\xf3\x02\x02_1\x04\xf1\xff",
            ),
            (
                "encoded entry header reach outside the allocation",
                b"\x0d\x19\x19\x00\x00\x00\x16\x00\x00\x00\x06\x00\x00\xf1\x02\xf1\x02\xf2\x02\x02_1\x04\x99\x02\xf3\xff",
            ),
            (
                "invalid ziplist encoding",
                b"\x0e\x02\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\x02_9\x04\xf9\x02\x86_7\x04\xf7\x02\x02_5\xff\
                  \x19\x19\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\xf5\x02\x02_3\x04\xf3\x02\x02_1\x04\xf1\xff",
            ),
            (
                "uneven entry count in hash",
                b"\x0d\x3d\x3d\x00\x00\x00\x38\x00\x00\x00\x14\x00\x00\xf2\x02\x02_1\x04\x1c\x02\xf7\x02\xf1\x02\xf1\x02\
                  \xf5\x02\xf5\x02\xf4\x02\x02_3\x04\xf6\x02\x02_5\x04\xf8\x02\x02_7\x04\xf9\x02\xf9\x02\xf3\x02\xf3\x02\
                  \xfa\x02\x02_9\xff",
            ),
            (
                "valgrind ziplist prevlen reaches outside the ziplist",
                b"\x0e\x02\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\x02_9\x04\xf9\x02\x02_7\x04\xf7\x02\x02_5\xff\
                  \x19\x19\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\xf5\x02\x02_3\x04\xf3\x95\x02_1\x04\xf1\xff",
            ),
            (
                "valgrind ziplist prev too big",
                b"\x0e\x01\x13\x13\x00\x00\x00\x10\x00\x00\x00\x03\x00\x00\xf3\x02\x02_1\xc1\xf1\xff",
            ),
            (
                "hash ziplist too long entry len",
                b"\x0d\x3d\x3d\x00\x00\x00\x3a\x00\x00\x00\x14\x13\x00\xf5\x02\xf5\x02\xf2\x02\x53_1\x04\xf3\x02\xf3\x02\
                  \xf7\x02\xf7\x02\xf8\x02\x02_7\x04\xf1\x02\xf1\x02\xf6\x02\x02_5\x04\xf4\x02\x02_3\x04\xfa\x02\x02_9\x04\
                  \xf9\x02\xf9\xff",
            ),
            (
                "empty quicklist",
                b"\x0e\xc0\x2b\x15\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\xe0\x62\x58\xea\xdf\x22\x00\x00\x00\xff",
            ),
        ];
        for (name, body) in bad {
            assert!(refused(restore(body)), "{name}");
        }
        let hash_crash: &[u8] =
            b"\x0d\x19\x19\x00\x00\x00\x16\x00\x00\x00\x06\x00\x00\xf1\x02\xf1\x02\xf2\x02\x02_1\x04\xf3\x02\xf3\xff";
        assert_eq!(pairs(&restore(hash_crash).unwrap()), text_pairs(&[("0", "0"), ("1", "_1"), ("2", "2")]));
    }

    /// A quicklist whose two nodes are the intact nodes of the "invalid ziplist encoding" and
    /// "invalid access in ziplist tail prevlen decoding" payloads above (each of which damages
    /// the other node); redis-server 7.0.15 restores it to these ten elements.
    #[test]
    fn decodes_redis_fuzzer_list_nodes() {
        let body: &[u8] = b"\x0e\x02\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\x02_9\x04\xf9\x02\x02_7\x04\xf7\
            \x02\x02_5\xff\x19\x19\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\xf5\x02\x02_3\x04\xf3\x02\x02_1\x04\xf1\xff";
        let want = texts(&["_9", "8", "_7", "6", "_5", "4", "_3", "2", "_1", "0"]);
        assert_eq!(elements(&restore(body).unwrap()), want);
    }

    /// Every ziplist entry encoding, in a list ziplist, a quicklist and a hash ziplist.
    #[test]
    fn every_ziplist_encoding_through_each_type() {
        let entries: Vec<(Enc, bool)> = vec![
            (Enc::Str6(b"".to_vec()), false),
            (Enc::Str6(b"abc".to_vec()), true),
            (Enc::Str14(vec![b'm'; 300]), false),
            (Enc::Str32(vec![b'l'; 20000]), false),
            (Enc::Imm(0), false),
            (Enc::Imm(12), false),
            (Enc::I8(-100), false),
            (Enc::I16(-30000), false),
            (Enc::I24(8_000_000), false),
            (Enc::I32(-2_000_000_000), false),
            (Enc::I64(i64::MIN), false),
            (Enc::Str6(b"12".to_vec()), false),
        ];
        let want: Vec<Vec<u8>> = entries.iter().map(|(e, _)| e.text()).collect();
        let blob = zl::encode_with(&entries);
        for compress in [false, true] {
            let v = restore(&blob_body(encoding::RDB_TYPE_LIST_ZIPLIST, &blob, compress)).unwrap();
            assert_eq!(elements(&v), want);
        }
        let (a, b) = entries.split_at(5);
        let v = restore(&quicklist_body(&[zl::encode_with(a), zl::encode::<&[u8]>(&[]), zl::encode_with(b)])).unwrap();
        assert_eq!(elements(&v), want);
        // "12" as a string and 12 as an integer are the same field, so drop the string.
        let hash =
            zl::encode_with(&entries[..entries.len() - 1].iter().chain(&entries[..1]).cloned().collect::<Vec<_>>());
        let v = restore(&blob_body(encoding::RDB_TYPE_HASH_ZIPLIST, &hash, true)).unwrap();
        let flat: Vec<Vec<u8>> = pairs(&v).into_iter().flat_map(|(f, v)| [f, v]).collect();
        assert_eq!(flat, [&want[..want.len() - 1], &want[..1]].concat());
    }

    #[test]
    fn plain_lists_in_every_string_form() {
        let elems: Vec<Vec<u8>> =
            vec![b"a".to_vec(), b"-5".to_vec(), b"300".to_vec(), b"70000".to_vec(), vec![b'z'; 500], b"".to_vec()];
        // write_string uses the integer and LZF forms where they apply.
        let body = list_body(&elems);
        assert!(body.windows(2).any(|w| w == b"\xc0\xfb") && body.contains(&0xC3));
        assert_eq!(elements(&restore(&body).unwrap()), elems);
        // A count beyond what the input holds is refused before anything is reserved.
        assert!(refused(restore(b"\x01\x81\x00\x00\x00\x01\x00\x00\x00\x00\x01a")));
        // Short by one element.
        assert!(refused(restore(b"\x01\x03\x01a\x01b")));
    }

    #[test]
    fn lists_are_packed_into_nodes_of_8_kib() {
        let elems: Vec<Vec<u8>> = (0..3000).map(|i| format!("element-{i}").into_bytes()).collect();
        for body in [list_body(&elems), blob_body(encoding::RDB_TYPE_LIST_ZIPLIST, &zl::encode(&elems), true)] {
            let v = restore(&body).unwrap();
            let RdbValue::List(nodes) = &v else { unreachable!() };
            assert!(nodes.len() > 3);
            assert_eq!(elements(&v), elems);
        }
        // An element bigger than a node gets one of its own, between full neighbours.
        let big = vec![b'b'; 20000];
        let elems: Vec<&[u8]> = vec![b"1", b"2", &big, b"3"];
        let v = restore(&list_body(&elems)).unwrap();
        let RdbValue::List(nodes) = &v else { unreachable!() };
        let lens: Vec<usize> = nodes.iter().map(Listpack::len).collect();
        assert_eq!(lens, [2, 1, 1]);
        assert_eq!(elements(&v), texts(&elems));
    }

    #[test]
    fn refuses_what_redis_refuses() {
        let ziplist_body = |t: u8, elems: &[&str]| blob_body(t, &zl::encode(elems), false);
        // Empty collections of each type.
        assert!(refused(restore(b"\x01\x00")));
        assert!(refused(restore(&ziplist_body(encoding::RDB_TYPE_LIST_ZIPLIST, &[]))));
        assert!(refused(restore(&ziplist_body(encoding::RDB_TYPE_HASH_ZIPLIST, &[]))));
        assert!(refused(restore(b"\x0e\x00")));
        assert!(refused(restore(&quicklist_body(&[zl::encode::<&[u8]>(&[]), zl::encode::<&[u8]>(&[])]))));
        assert!(refused(restore(&blob_body(encoding::RDB_TYPE_HASH_ZIPMAP, b"\x00\xff", false))));
        // A quicklist node of zero bytes, even beside a good one.
        let mut body = quicklist_body(&[zl::encode(&["a"])]);
        body[1] = 2;
        body.push(0);
        assert!(refused(restore(&body)));
        // Odd hash ziplists; duplicate fields, also an integer and a string with one text.
        assert!(refused(restore(&ziplist_body(encoding::RDB_TYPE_HASH_ZIPLIST, &["f", "v", "g"]))));
        assert!(refused(restore(&ziplist_body(encoding::RDB_TYPE_HASH_ZIPLIST, &["f", "v", "f", "w"]))));
        let int_and_string = zl::encode_with(&[
            (Enc::Imm(5), false),
            (Enc::Str6(b"a".to_vec()), false),
            (Enc::Str6(b"5".to_vec()), false),
            (Enc::Str6(b"b".to_vec()), false),
        ]);
        assert!(refused(restore(&blob_body(encoding::RDB_TYPE_HASH_ZIPLIST, &int_and_string, false))));
        assert!(refused(restore(&blob_body(
            encoding::RDB_TYPE_HASH_ZIPMAP,
            &zm::encode(&[("f", "v"), ("f", "w")]),
            false
        ))));
        // Blobs that are not what they claim to be, including an integer-encoded string.
        assert!(refused(restore(&blob_body(encoding::RDB_TYPE_LIST_ZIPLIST, &zm::encode(&[("f", "v")]), false))));
        assert!(refused(restore(&blob_body(encoding::RDB_TYPE_HASH_ZIPMAP, &zl::encode(&["f", "v"]), false))));
        assert!(refused(restore(b"\x0a\xc0\x05")));
        // The error names the problem and where the value starts.
        let mut r = Reader::new(b"\x0b\x0b\x00\x00\x00\x0a\x00\x00\x00\x01\x00\xff");
        assert_eq!(
            decode_value(encoding::RDB_TYPE_LIST_ZIPLIST, &mut r),
            Err(RdbError::BadValue { offset: 0, what: "ziplist entry count" })
        );
    }

    #[test]
    fn zipmap_hashes() {
        let long = vec![b'v'; 1000];
        let items: Vec<(&[u8], &[u8], u8)> =
            vec![(b"f1", b"v1", 0), (b"n", b"12", 4), (b"", b"", 1), (b"long", &long, 0)];
        for compress in [false, true] {
            let v = restore(&blob_body(encoding::RDB_TYPE_HASH_ZIPMAP, &zm::encode_with(&items), compress)).unwrap();
            let want: Pairs = items.iter().map(|(f, v, _)| (f.to_vec(), v.to_vec())).collect();
            assert_eq!(pairs(&v), want);
        }
    }

    /// Elements for list proptests: integers of every width, short and long strings.
    fn element() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<i64>().prop_map(|v| v.to_string().into_bytes()),
            (-200i64..200).prop_map(|v| v.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..20),
            proptest::collection::vec(any::<u8>(), 60..400),
        ]
    }

    /// A legacy body of one of the five types holding `elems` (hashes take them as field,
    /// value, ... with fields made unique).
    fn legacy_body(kind: u8, elems: &[Vec<u8>], split: usize) -> Vec<u8> {
        let unique_pairs = || -> Pairs {
            let mut seen = std::collections::HashSet::new();
            elems.chunks_exact(2).filter(|p| seen.insert(p[0].clone())).map(|p| (p[0].clone(), p[1].clone())).collect()
        };
        match kind % 5 {
            0 => list_body(elems),
            1 => blob_body(encoding::RDB_TYPE_LIST_ZIPLIST, &zl::encode(elems), true),
            2 => {
                let at = split % (elems.len() + 1);
                quicklist_body(&[zl::encode(&elems[..at]), zl::encode(&elems[at..])])
            }
            3 => {
                let flat: Vec<Vec<u8>> = unique_pairs().into_iter().flat_map(|(f, v)| [f, v]).collect();
                blob_body(encoding::RDB_TYPE_HASH_ZIPLIST, &zl::encode(&flat), true)
            }
            _ => blob_body(encoding::RDB_TYPE_HASH_ZIPMAP, &zm::encode(&unique_pairs()), true),
        }
    }

    proptest! {
        #[test]
        fn lists_round_trip(elems in proptest::collection::vec(element(), 1..80), kind in 0u8..3, split in any::<usize>()) {
            let v = restore(&legacy_body(kind, &elems, split)).unwrap();
            prop_assert_eq!(elements(&v), elems);
        }

        #[test]
        fn hashes_round_trip(elems in proptest::collection::vec(element(), 2..60), kind in 3u8..5) {
            let mut seen = std::collections::HashSet::new();
            let want: Pairs = elems
                .chunks_exact(2)
                .filter(|p| seen.insert(p[0].clone()))
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect();
            let v = restore(&legacy_body(kind, &elems, 0)).unwrap();
            prop_assert_eq!(pairs(&v), want);
        }

        #[test]
        fn damaged_payloads_never_panic(
            elems in proptest::collection::vec(element(), 0..20),
            kind in any::<u8>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5),
            cut in any::<usize>(),
        ) {
            let mut body = legacy_body(kind, &elems, cut);
            for (at, byte) in flips {
                let i = at % body.len();
                body[i] = byte;
            }
            if cut % 3 == 0 {
                body.truncate(1 + cut % body.len());
            }
            match restore(&body) {
                Ok(RdbValue::List(nodes)) => prop_assert!(nodes.iter().all(|n| !n.is_empty())),
                Ok(RdbValue::Hash(p)) => {
                    let fields: std::collections::HashSet<&Vec<u8>> = p.iter().map(|(f, _)| f).collect();
                    prop_assert!(!p.is_empty() && fields.len() == p.len());
                }
                _ => {}
            }
        }
    }

    /// Decodes a value body of type `t`.
    fn decode(t: u8, body: &[u8]) -> Result<RdbValue, RdbError> {
        decode_value(t, &mut Reader::new(body))
    }

    #[test]
    fn sorted_sets_load_from_ziplists_and_text_scores() {
        let blob = |elems: &[&str]| {
            let mut body = Vec::new();
            write_string(&mut body, &zl::encode(elems), false);
            body
        };
        let got = decode(encoding::RDB_TYPE_ZSET_ZIPLIST, &blob(&["a", "1.5", "b", "2", "c", "-inf"])).unwrap();
        let want = vec![(b"a".to_vec(), 1.5), (b"b".to_vec(), 2.0), (b"c".to_vec(), f64::NEG_INFINITY)];
        assert_eq!(got, RdbValue::ZSet(want.clone()));
        for bad in [&["a", "1", "b"][..], &["a", "1", "a", "2"], &["a", "x"], &["a", "nan"], &[]] {
            assert!(decode(encoding::RDB_TYPE_ZSET_ZIPLIST, &blob(bad)).is_err(), "{bad:?}");
        }
        // RDB_TYPE_ZSET: scores as a length byte and text, 254/255 for +inf/-inf, 253 NaN.
        let text = |scores: &[&[u8]]| {
            let mut body = Vec::new();
            write_len(&mut body, scores.len() as u64);
            for (i, s) in scores.iter().enumerate() {
                write_string(&mut body, format!("m{i}").as_bytes(), false);
                body.extend_from_slice(s);
            }
            body
        };
        let got = decode(encoding::RDB_TYPE_ZSET, &text(&[b"\x031.5", b"\xfe", b"\xff", b"\x02-3"])).unwrap();
        let want: Vec<(Vec<u8>, f64)> = [1.5, f64::INFINITY, f64::NEG_INFINITY, -3.0]
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("m{i}").into_bytes(), *s))
            .collect();
        assert_eq!(got, RdbValue::ZSet(want));
        assert!(decode(encoding::RDB_TYPE_ZSET, &text(&[b"\xfd"])).is_err(), "NaN");
        assert!(decode(encoding::RDB_TYPE_ZSET, &text(&[b"\x02zz"])).is_err(), "not a number");
        assert!(decode(encoding::RDB_TYPE_ZSET, &text(&[])).is_err(), "empty");
    }
}
