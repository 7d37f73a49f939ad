//! A SentencePiece `tokenizer.model` (protobuf `ModelProto`) turned into the Hugging Face
//! `tokenizer.json` that mistral.rs loads: pieces, scores and types, the BPE merges implied by the
//! scores, byte fallback, and the normaliser and decoder the model's settings call for.

use std::collections::HashMap;

use anyhow::{bail, Context};
use base64::Engine as _;
use serde_json::{json, Value};

/// How SentencePiece classifies a piece (`SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: String,
    pub score: f32,
    pub kind: PieceKind,
}

/// The parts of `ModelProto` a conversion needs.
#[derive(Debug, Clone)]
pub struct SentencePieceModel {
    pub pieces: Vec<Piece>,
    /// `TrainerSpec.model_type`: 1 unigram, 2 BPE, 3 word, 4 char.
    pub model_type: u64,
    pub byte_fallback: bool,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
    pub precompiled_charsmap: Vec<u8>,
}

const BPE: u64 = 2;
const SPACE_MARK: &str = "\u{2581}";

impl SentencePieceModel {
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let mut model = Self {
            pieces: Vec::new(),
            model_type: 1,
            byte_fallback: false,
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
            precompiled_charsmap: Vec::new(),
        };
        for field in Fields::new(bytes) {
            match field? {
                (1, Wire::Bytes(b)) => model.pieces.push(parse_piece(b)?),
                (2, Wire::Bytes(b)) => {
                    for f in Fields::new(b) {
                        match f? {
                            (3, Wire::Varint(v)) => model.model_type = v,
                            (35, Wire::Varint(v)) => model.byte_fallback = v != 0,
                            _ => {}
                        }
                    }
                }
                (3, Wire::Bytes(b)) => {
                    for f in Fields::new(b) {
                        match f? {
                            (2, Wire::Bytes(map)) => model.precompiled_charsmap = map.to_vec(),
                            (3, Wire::Varint(v)) => model.add_dummy_prefix = v != 0,
                            (4, Wire::Varint(v)) => model.remove_extra_whitespaces = v != 0,
                            (5, Wire::Varint(v)) => model.escape_whitespaces = v != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            bail!("not a SentencePiece model: it has no pieces");
        }
        Ok(model)
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.pieces.iter().position(|p| p.text == text).and_then(|i| u32::try_from(i).ok())
    }

    /// The Hugging Face `tokenizer.json` of a BPE model, encoding as SentencePiece does: merges
    /// ranked by the score of the piece they make, bytes for characters outside the vocabulary,
    /// control and user-defined pieces matched whole.
    pub fn to_tokenizer_json(&self) -> anyhow::Result<Value> {
        if self.model_type != BPE {
            bail!("only BPE SentencePiece models convert (this one has model type {})", self.model_type);
        }
        if !self.escape_whitespaces {
            bail!("a SentencePiece model that keeps raw spaces is not supported");
        }
        let unk = self.pieces.iter().find(|p| p.kind == PieceKind::Unknown).map(|p| p.text.clone());
        let vocab: serde_json::Map<String, Value> =
            self.pieces.iter().enumerate().map(|(id, p)| (p.text.clone(), json!(id))).collect();
        let added: Vec<Value> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.kind, PieceKind::Control | PieceKind::UserDefined | PieceKind::Unknown))
            .map(|(id, p)| {
                json!({"id": id, "content": p.text, "single_word": false, "lstrip": false, "rstrip": false,
                       "normalized": false, "special": true})
            })
            .collect();
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": self.normalizer(),
            "pre_tokenizer": null,
            "post_processor": null,
            "decoder": self.decoder(),
            "model": {
                "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": self.byte_fallback,
                "ignore_merges": false, "vocab": vocab, "merges": self.merges(),
            }
        }))
    }

    /// Every split of a normal piece into two normal pieces is a merge; SentencePiece applies
    /// the one that makes the highest-scoring piece first, so that order is the merge rank.
    fn merges(&self) -> Vec<[String; 2]> {
        let normal: HashMap<&str, usize> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind == PieceKind::Normal)
            .map(|(i, p)| (p.text.as_str(), i))
            .collect();
        let mut merges: Vec<(f32, usize, usize, [String; 2])> = Vec::new();
        for (id, piece) in self.pieces.iter().enumerate().filter(|(_, p)| p.kind == PieceKind::Normal) {
            for (at, _) in piece.text.char_indices().skip(1) {
                let (left, right) = piece.text.split_at(at);
                if let (Some(&l), Some(_)) = (normal.get(left), normal.get(right)) {
                    merges.push((piece.score, id, l, [left.to_owned(), right.to_owned()]));
                }
            }
        }
        merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        merges.into_iter().map(|m| m.3).collect()
    }

    fn normalizer(&self) -> Value {
        let mut steps = Vec::new();
        if !self.precompiled_charsmap.is_empty() {
            let map = base64::engine::general_purpose::STANDARD.encode(&self.precompiled_charsmap);
            steps.push(json!({"type": "Precompiled", "precompiled_charsmap": map}));
        }
        if self.remove_extra_whitespaces {
            steps.push(json!({"type": "Strip", "strip_left": true, "strip_right": true}));
            steps.push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}));
        }
        if self.add_dummy_prefix {
            steps.push(json!({"type": "Prepend", "prepend": SPACE_MARK}));
        }
        steps.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": SPACE_MARK}));
        json!({"type": "Sequence", "normalizers": steps})
    }

    fn decoder(&self) -> Value {
        let mut steps = vec![
            json!({"type": "Replace", "pattern": {"String": SPACE_MARK}, "content": " "}),
            json!({"type": "ByteFallback"}),
            json!({"type": "Fuse"}),
        ];
        if self.add_dummy_prefix {
            steps.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
        }
        json!({"type": "Sequence", "decoders": steps})
    }
}

fn parse_piece(bytes: &[u8]) -> anyhow::Result<Piece> {
    let mut piece = Piece { text: String::new(), score: 0.0, kind: PieceKind::Normal };
    for field in Fields::new(bytes) {
        match field? {
            (1, Wire::Bytes(b)) => piece.text = String::from_utf8(b.to_vec()).context("a piece is not UTF-8")?,
            (2, Wire::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Wire::Varint(t)) => {
                piece.kind = match t {
                    1 => PieceKind::Normal,
                    2 => PieceKind::Unknown,
                    3 => PieceKind::Control,
                    4 => PieceKind::UserDefined,
                    5 => PieceKind::Unused,
                    6 => PieceKind::Byte,
                    other => bail!("unknown piece type {other}"),
                }
            }
            _ => {}
        }
    }
    Ok(piece)
}

/// One protobuf field value, by wire type.
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one protobuf message, in order: `(field number, value)`.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn varint(&mut self) -> anyhow::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.rest.split_first().context("truncated varint")?;
            self.rest = rest;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("varint longer than 64 bits")
    }

    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        if n > self.rest.len() {
            bail!("truncated field: {n} bytes announced, {} left", self.rest.len());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn field(&mut self) -> anyhow::Result<(u64, Wire<'a>)> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Wire::Fixed32(u32::from_le_bytes(b.try_into()?))
            }
            other => bail!("unsupported protobuf wire type {other}"),
        };
        Ok((key >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = anyhow::Result<(u64, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(number: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn piece(text: &str, score: f32, kind: u64) -> Vec<u8> {
        let mut p = Vec::new();
        bytes_field(1, text.as_bytes(), &mut p);
        varint(2 << 3 | 5, &mut p);
        p.extend_from_slice(&score.to_le_bytes());
        varint(3 << 3, &mut p);
        varint(kind, &mut p);
        p
    }

    /// A model written field by field: pieces, a trainer spec (BPE, byte fallback) and a
    /// normaliser spec without a dummy prefix.
    fn handmade() -> Vec<u8> {
        let mut m = Vec::new();
        for (text, score, kind) in [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("ab", -1.0, 1), ("a", -2.0, 1), ("b", -3.0, 1)]
        {
            bytes_field(1, &piece(text, score, kind), &mut m);
        }
        let mut trainer = Vec::new();
        varint(3 << 3, &mut trainer);
        varint(2, &mut trainer);
        varint(35 << 3, &mut trainer);
        varint(1, &mut trainer);
        bytes_field(2, &trainer, &mut m);
        let mut normalizer = Vec::new();
        bytes_field(1, b"identity", &mut normalizer);
        varint(3 << 3, &mut normalizer);
        varint(0, &mut normalizer);
        bytes_field(3, &normalizer, &mut m);
        m
    }

    #[test]
    fn parses_pieces_and_specs_written_by_hand() {
        let model = SentencePieceModel::parse(&handmade()).unwrap();
        assert_eq!(model.pieces.len(), 5);
        assert_eq!(model.pieces[1], Piece { text: "<s>".into(), score: 0.0, kind: PieceKind::Control });
        assert_eq!(model.pieces[4].score, -3.0);
        assert_eq!((model.model_type, model.byte_fallback, model.add_dummy_prefix), (2, true, false));
        assert!(model.remove_extra_whitespaces, "an absent field keeps the proto default");
        assert_eq!(model.id_of("ab"), Some(2));
        let json = model.to_tokenizer_json().unwrap();
        assert_eq!(json["model"]["merges"], json!([["a", "b"]]));
        assert_eq!(json["added_tokens"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn rejects_truncated_and_empty_models() {
        let mut bytes = handmade();
        bytes.truncate(bytes.len() - 3);
        assert!(SentencePieceModel::parse(&bytes).is_err());
        assert!(SentencePieceModel::parse(b"").is_err());
        assert!(SentencePieceModel::parse(b"{\"not\": \"protobuf\"}").is_err());
    }
}
