//! Reading a Hugging Face checkpoint's tensors one at a time, whichever way it was saved:
//! safetensors or PyTorch `pytorch_model.bin` (a zip of a pickle, whose tensor table candle
//! reads), single-file or sharded with an index. Each read holds one copy of one tensor.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::pickle::{read_pth_tensor_info, TensorInfo};
use candle_core::DType;

use super::tensors::Float;

/// One file of a checkpoint.
enum Shard {
    Safetensors { path: PathBuf, data_start: u64, offsets: BTreeMap<String, (u64, u64)> },
    Pth { path: PathBuf, infos: BTreeMap<String, TensorInfo> },
}

/// The tensors of a checkpoint directory: names, types and shapes up front, data on demand.
pub struct Weights {
    shards: Vec<Shard>,
    index: BTreeMap<String, (usize, Float, Vec<usize>)>,
}

impl Weights {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let files = weight_files(dir)?;
        let mut weights = Self { shards: Vec::new(), index: BTreeMap::new() };
        for file in files {
            let shard = weights.shards.len();
            let (opened, tensors) = if file.extension().is_some_and(|e| e == "safetensors") {
                open_safetensors(&file)?
            } else {
                open_pth(&file)?
            };
            for (name, dtype, shape) in tensors {
                weights.index.insert(name, (shard, dtype, shape));
            }
            weights.shards.push(opened);
        }
        Ok(weights)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }

    pub fn info(&self, name: &str) -> Option<(Float, &[usize])> {
        self.index.get(name).map(|(_, dtype, shape)| (*dtype, shape.as_slice()))
    }

    /// The tensor's elements, little-endian, row-major.
    pub fn read(&self, name: &str) -> anyhow::Result<(Float, Vec<u8>)> {
        let (shard, dtype, _) = self.index.get(name).with_context(|| format!("no tensor {name}"))?;
        let data = match self.shards.get(*shard).context("shard index")? {
            Shard::Safetensors { path, data_start, offsets } => {
                let (begin, end) = offsets.get(name).with_context(|| format!("no tensor {name}"))?;
                let mut file = fs_err::File::open(path)?;
                file.seek(SeekFrom::Start(data_start + begin))?;
                let mut data = vec![0u8; usize::try_from(end - begin)?];
                file.read_exact(&mut data).with_context(|| format!("reading {name} from {}", path.display()))?;
                data
            }
            Shard::Pth { path, infos } => {
                let info = infos.get(name).with_context(|| format!("no tensor {name}"))?;
                if !info.layout.is_contiguous() {
                    bail!("{name} is stored as a strided view; re-save the checkpoint with contiguous tensors");
                }
                let mut zip = zip::ZipArchive::new(std::io::BufReader::new(fs_err::File::open(path)?))?;
                let mut entry = zip.by_name(&info.path).with_context(|| format!("{name}'s storage {}", info.path))?;
                std::io::copy(&mut entry.by_ref().take(info.layout.start_offset() as u64), &mut std::io::sink())?;
                let mut data = vec![0u8; info.layout.shape().elem_count() * dtype.size()];
                entry.read_exact(&mut data).with_context(|| format!("reading {name} from {}", path.display()))?;
                data
            }
        };
        Ok((*dtype, data))
    }
}

/// The weight files of `dir`, preferring safetensors, following an index when there is one.
fn weight_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    for (index, single) in
        [("model.safetensors.index.json", "model.safetensors"), ("pytorch_model.bin.index.json", "pytorch_model.bin")]
    {
        let index_path = dir.join(index);
        if index_path.is_file() {
            #[derive(serde::Deserialize)]
            struct Index {
                weight_map: BTreeMap<String, String>,
            }
            let parsed: Index = serde_json::from_str(&fs_err::read_to_string(&index_path)?)
                .with_context(|| format!("reading {}", index_path.display()))?;
            let mut files: Vec<String> = parsed.weight_map.into_values().collect();
            files.sort();
            files.dedup();
            return Ok(files.into_iter().map(|f| dir.join(f)).collect());
        }
        if dir.join(single).is_file() {
            return Ok(vec![dir.join(single)]);
        }
    }
    bail!("{} has no weights (pytorch_model.bin, model.safetensors, or their sharded indexes)", dir.display())
}

type Listing = Vec<(String, Float, Vec<usize>)>;

fn open_safetensors(path: &Path) -> anyhow::Result<(Shard, Listing)> {
    #[derive(serde::Deserialize)]
    struct Entry {
        dtype: String,
        shape: Vec<usize>,
        data_offsets: (u64, u64),
    }
    let mut file = fs_err::File::open(path)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        bail!("{}: a {len}-byte header is not safetensors", path.display());
    }
    let mut header = vec![0u8; usize::try_from(len)?];
    file.read_exact(&mut header)?;
    let mut entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).with_context(|| format!("reading the header of {}", path.display()))?;
    entries.remove("__metadata__");
    let mut offsets = BTreeMap::new();
    let mut listing = Vec::new();
    for (name, value) in entries {
        let entry: Entry = serde_json::from_value(value).with_context(|| format!("header entry {name}"))?;
        let dtype = match entry.dtype.as_str() {
            "F32" => Float::F32,
            "F16" => Float::F16,
            "BF16" => Float::Bf16,
            other => bail!("{name} is {other}; only F32, F16 and BF16 weights convert"),
        };
        let expected = dtype.size() as u64 * entry.shape.iter().product::<usize>() as u64;
        if entry.data_offsets.1.checked_sub(entry.data_offsets.0) != Some(expected) {
            bail!("{name}: its offsets do not match its shape");
        }
        offsets.insert(name.clone(), entry.data_offsets);
        listing.push((name, dtype, entry.shape));
    }
    Ok((Shard::Safetensors { path: path.to_owned(), data_start: 8 + len, offsets }, listing))
}

fn open_pth(path: &Path) -> anyhow::Result<(Shard, Listing)> {
    let infos = read_pth_tensor_info(path, false, None)
        .with_context(|| format!("reading {} as a PyTorch checkpoint", path.display()))?;
    let mut listing = Vec::new();
    let mut by_name = BTreeMap::new();
    for info in infos {
        let dtype = match info.dtype {
            DType::F32 => Float::F32,
            DType::F16 => Float::F16,
            DType::BF16 => Float::Bf16,
            other => bail!("{} is {other:?}; only F32, F16 and BF16 weights convert", info.name),
        };
        listing.push((info.name.clone(), dtype, info.layout.dims().to_vec()));
        by_name.insert(info.name.clone(), info);
    }
    Ok((Shard::Pth { path: path.to_owned(), infos: by_name }, listing))
}
