//! Writing safetensors files one tensor at a time, so that making or converting a checkpoint
//! holds one tensor in memory, never the model; and the float element types checkpoints use.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context};

/// The element types of language-model weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Float {
    F32,
    F16,
    Bf16,
}

impl Float {
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
        }
    }

    /// The name in a safetensors header (and in config.json's `torch_dtype`, lower-cased).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Bf16 => "BF16",
        }
    }

    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::Bf16 => "bfloat16",
        }
    }

    /// Little-endian elements to f32.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Self::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default())).collect(),
            Self::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes(b.try_into().unwrap_or_default()).to_f32())
                .collect(),
            Self::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes(b.try_into().unwrap_or_default()).to_f32())
                .collect(),
        }
    }

    /// f32 values to little-endian elements, rounding to nearest even.
    pub fn encode(self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            Self::F32 => out.extend(values.iter().flat_map(|v| v.to_le_bytes())),
            Self::F16 => out.extend(values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes())),
            Self::Bf16 => out.extend(values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())),
        }
    }
}

/// What one tensor of the file will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: Float,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub fn new(name: impl Into<String>, dtype: Float, shape: Vec<usize>) -> Self {
        Self { name: name.into(), dtype, shape }
    }

    pub fn bytes(&self) -> usize {
        self.dtype.size() * self.shape.iter().product::<usize>()
    }
}

/// A safetensors file whose header is written first; the tensors follow in the header's order.
pub struct SafetensorsWriter {
    out: BufWriter<fs_err::File>,
    specs: Vec<TensorSpec>,
    next: usize,
}

impl SafetensorsWriter {
    pub fn create(path: &Path, specs: Vec<TensorSpec>) -> anyhow::Result<Self> {
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut offset = 0usize;
        for spec in &specs {
            let end = offset + spec.bytes();
            header.insert(
                spec.name.clone(),
                serde_json::json!({"dtype": spec.dtype.safetensors_name(), "shape": spec.shape, "data_offsets": [offset, end]}),
            );
            offset = end;
        }
        let mut header = serde_json::to_vec(&header)?;
        // The data that follows must start 8-byte aligned; the format pads the header with spaces.
        header.resize(header.len().next_multiple_of(8), b' ');
        let mut out = BufWriter::with_capacity(1 << 22, fs_err::File::create(path)?);
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        Ok(Self { out, specs, next: 0 })
    }

    /// The next tensor's spec, if any is left to write.
    pub fn next_spec(&self) -> Option<&TensorSpec> {
        self.specs.get(self.next)
    }

    /// Write the data of the next tensor, which must be `name` and have its announced size.
    pub fn write(&mut self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        let Some(spec) = self.specs.get(self.next) else { bail!("{name}: every tensor is already written") };
        if spec.name != name || spec.bytes() != data.len() {
            bail!("expected {} ({} bytes), got {name} ({} bytes)", spec.name, spec.bytes(), data.len());
        }
        self.out.write_all(data).with_context(|| format!("writing {name}"))?;
        self.next += 1;
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        if let Some(missing) = self.specs.get(self.next) {
            bail!("{} and later tensors were never written", missing.name);
        }
        self.out.flush()?;
        self.out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_file_the_reference_reader_accepts_and_checks_order_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let specs = vec![TensorSpec::new("a", Float::F32, vec![2]), TensorSpec::new("b", Float::Bf16, vec![3])];
        let mut w = SafetensorsWriter::create(&path, specs).unwrap();
        assert!(w.write("b", &[0; 6]).is_err(), "out of order");
        assert!(w.write("a", &[0; 4]).is_err(), "wrong size");
        let mut a = Vec::new();
        Float::F32.encode(&[1.5, -2.0], &mut a);
        w.write("a", &a).unwrap();
        let mut b = Vec::new();
        Float::Bf16.encode(&[1.0, 0.5, -3.0], &mut b);
        w.write("b", &b).unwrap();
        w.finish().unwrap();

        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let b = st.tensor("b").unwrap();
        assert_eq!((b.dtype(), b.shape()), (safetensors::Dtype::BF16, &[3usize][..]));
        assert_eq!(Float::Bf16.decode(b.data()), [1.0, 0.5, -3.0]);
        assert_eq!(Float::F32.decode(st.tensor("a").unwrap().data()), [1.5, -2.0]);
    }

    #[test]
    fn an_unfinished_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let w = SafetensorsWriter::create(&dir.path().join("t"), vec![TensorSpec::new("a", Float::F16, vec![1])]);
        assert!(w.unwrap().finish().is_err());
    }
}
