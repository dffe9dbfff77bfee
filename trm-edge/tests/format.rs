//! The packed model file: round trips through the writer and the reader, and rejection of
//! corrupted, truncated and inconsistent files (never a panic).

use proptest::prelude::*;
use trm_edge::format::{
    DType, ENTRY_LEN, FormatError, HEADER_LEN, MAGIC, Model, TensorId, TensorInput, TensorKind,
    Variant, WriteError, packed_size, write_model,
};
use trm_testkit::models::{aligned, pack, random_tensors, tiny_config};

/// Recomputes the CRC-32 trailer after a deliberate edit.
fn fix_crc(file: &mut [u8]) {
    let n = file.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&file[..n]);
    file[n..].copy_from_slice(&crc.to_le_bytes());
}

fn small_files() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for variant in [Variant::MlpT, Variant::Attention] {
        let mut cfg = tiny_config(variant, 3, 5);
        cfg.hidden = 4;
        cfg.head_dim = 2;
        cfg.mlp_inter = 4;
        cfg.layers = 1;
        cfg.puzzle_emb_len = 1;
        cfg.puzzle_emb_ndim = 4;
        cfg.num_puzzle_ids = 1;
        if variant == Variant::MlpT {
            cfg.mlp_t_inter = 4;
        }
        let t = random_tensors(&cfg, 3);
        out.push(pack(&cfg, &t, DType::I8));
        out.push(pack(&cfg, &t, DType::F16));
    }
    out
}

#[test]
fn round_trip_keeps_config_and_values() {
    for variant in [Variant::MlpT, Variant::Attention] {
        let cfg = tiny_config(variant, 81, 11);
        let tensors = random_tensors(&cfg, 1);
        for dtype in [DType::F32, DType::F16, DType::I8] {
            let file = aligned(&pack(&cfg, &tensors, dtype));
            let model = Model::from_bytes(file.bytes()).unwrap();
            assert_eq!(*model.config(), cfg);
            assert_eq!(model.tensor_count(), tensors.len());
            for (id, shape, data) in &tensors {
                let view = model.tensor(*id).unwrap();
                assert_eq!(view.shape, *shape);
                let mut back = vec![0f32; data.len()];
                view.matrix.to_f32(&mut back);
                let max = data.iter().fold(0f32, |m, v| m.max(v.abs()));
                let tol = match view.matrix.dtype() {
                    DType::F32 => 0.0,
                    DType::F16 => max * 1e-3,
                    DType::I8 => max / 127.0 * 0.5 + 1e-7,
                };
                for (a, b) in back.iter().zip(data) {
                    assert!((a - b).abs() <= tol, "{id}: {a} vs {b} ({dtype:?})");
                }
            }
            // Data blocks are 64-byte aligned from the start of the file.
            for t in model.tensors() {
                let ptr = match t.matrix.weights() {
                    trm_edge::kernels::Weights::F32(b) | trm_edge::kernels::Weights::F16(b) => {
                        b.as_ptr()
                    }
                    trm_edge::kernels::Weights::I8 { values, .. } => values.as_ptr(),
                };
                assert_eq!(ptr as usize % 64, 0);
            }
        }
    }
}

#[test]
fn every_flipped_byte_is_rejected() {
    for file in small_files() {
        Model::from_bytes(&file).unwrap();
        let mut copy = file.clone();
        for i in 0..file.len() {
            copy[i] ^= 0xff;
            assert!(
                Model::from_bytes(&copy).is_err(),
                "byte {i} of {}",
                file.len()
            );
            copy[i] = file[i];
        }
    }
}

#[test]
fn every_truncation_is_rejected_and_trailing_bytes_are_ignored() {
    for file in small_files() {
        for n in 0..file.len() {
            match Model::from_bytes(&file[..n]) {
                Err(FormatError::Truncated { got, .. }) => assert_eq!(got, n),
                other => panic!("prefix {n}: {other:?}"),
            }
        }
        let mut longer = file.clone();
        longer.extend([0xff; 100]);
        Model::from_bytes(&longer).unwrap();
    }
}

#[test]
fn wrong_magic_and_version_are_named() {
    let file = &small_files()[0];
    let mut bad = file.clone();
    bad[0] = b'X';
    assert_eq!(Model::from_bytes(&bad).unwrap_err(), FormatError::BadMagic);
    let mut v2 = file.clone();
    v2[8] = 2;
    fix_crc(&mut v2);
    assert_eq!(
        Model::from_bytes(&v2).unwrap_err(),
        FormatError::UnsupportedVersion { found: 2 }
    );
    assert_eq!(
        Model::from_bytes(b"safetensors!").unwrap_err(),
        FormatError::BadMagic
    );
    assert!(matches!(
        Model::from_bytes(&MAGIC[..5]),
        Err(FormatError::Truncated { .. })
    ));
}

#[test]
fn inconsistent_tables_are_rejected() {
    let file = &small_files()[1];
    let entry = |i: usize| HEADER_LEN + i * ENTRY_LEN;
    // Tensor 1 placed on top of tensor 0.
    let mut overlap = file.clone();
    let off0 = overlap[entry(0) + 16..entry(0) + 20].to_vec();
    overlap[entry(1) + 16..entry(1) + 20].copy_from_slice(&off0);
    fix_crc(&mut overlap);
    assert!(matches!(
        Model::from_bytes(&overlap),
        Err(FormatError::BadTensor { index: 1, .. })
    ));
    // Offset beyond the end.
    let mut out = file.clone();
    out[entry(2) + 16..entry(2) + 20].copy_from_slice(&(file.len() as u32).to_le_bytes());
    fix_crc(&mut out);
    assert!(matches!(
        Model::from_bytes(&out),
        Err(FormatError::BadTensor { index: 2, .. })
    ));
    // A shape that does not match the config.
    let mut shape = file.clone();
    shape[entry(0) + 8] ^= 1;
    fix_crc(&mut shape);
    assert!(matches!(
        Model::from_bytes(&shape),
        Err(FormatError::BadTensor { index: 0, .. })
    ));
    // A config the tensors do not fit: hidden size changed in the header.
    let mut cfg = file.clone();
    cfg[36] = 6;
    fix_crc(&mut cfg);
    assert!(Model::from_bytes(&cfg).is_err());
    // Tensor 0 renamed to tensor 1's id: the embedding is missing.
    let mut dup = file.clone();
    let id1 = dup[entry(1)..entry(1) + 4].to_vec();
    dup[entry(0)..entry(0) + 4].copy_from_slice(&id1);
    fix_crc(&mut dup);
    assert_eq!(
        Model::from_bytes(&dup).unwrap_err(),
        FormatError::MissingTensor {
            id: TensorId::global(TensorKind::Embed)
        }
    );
    // Tensor 1 renamed to tensor 0's id: a duplicate, out of order.
    let mut dup = file.clone();
    let id0 = dup[entry(0)..entry(0) + 4].to_vec();
    dup[entry(1)..entry(1) + 4].copy_from_slice(&id0);
    fix_crc(&mut dup);
    assert!(matches!(
        Model::from_bytes(&dup),
        Err(FormatError::BadTensor { index: 1, .. })
    ));
}

#[test]
fn writer_rejects_bad_inputs() {
    let cfg = tiny_config(Variant::MlpT, 81, 11);
    let tensors = random_tensors(&cfg, 2);
    let inputs: Vec<TensorInput<'_>> = tensors
        .iter()
        .map(|(id, shape, data)| TensorInput {
            id: *id,
            shape: *shape,
            dtype: DType::F32,
            data,
        })
        .collect();
    let size = packed_size(&cfg, &inputs).unwrap();
    let mut small = vec![0u8; size - 1];
    assert_eq!(
        write_model(&cfg, &inputs, &mut small),
        Err(WriteError::BufferTooSmall {
            needed: size,
            got: size - 1
        })
    );
    let missing = &inputs[1..];
    assert_eq!(
        packed_size(&cfg, missing),
        Err(WriteError::Missing { id: inputs[0].id })
    );
    let mut dup = inputs.clone();
    dup.push(inputs[3]);
    assert_eq!(
        packed_size(&cfg, &dup),
        Err(WriteError::Duplicate { id: inputs[3].id })
    );
    let mut f16_vector = inputs.clone();
    let h = f16_vector
        .iter_mut()
        .find(|t| t.id.kind == TensorKind::HInit)
        .unwrap();
    h.dtype = DType::F16;
    assert!(matches!(
        packed_size(&cfg, &f16_vector),
        Err(WriteError::DtypeNotAllowed { .. })
    ));
    let mut extra = inputs.clone();
    let qkv = vec![0f32; 3 * 8 * 8];
    extra.push(TensorInput {
        id: TensorId::layer(TensorKind::AttnQkv, 0),
        shape: [24, 8],
        dtype: DType::F32,
        data: &qkv,
    });
    assert!(matches!(
        packed_size(&cfg, &extra),
        Err(WriteError::Unexpected { .. })
    ));
    let mut shape = inputs.clone();
    shape[0].shape = [8, 11];
    assert!(matches!(
        packed_size(&cfg, &shape),
        Err(WriteError::Shape { .. })
    ));
    let nan = vec![f32::NAN; inputs[0].data.len()];
    let mut bad = inputs.clone();
    bad[0].data = &nan;
    assert!(matches!(
        packed_size(&cfg, &bad),
        Err(WriteError::NonFinite { .. })
    ));
    // A finite value beyond the f16 range is refused for f16 only (it would become
    // infinite), with the tensor and the value; 65519 still rounds to 65504.
    let m = inputs
        .iter()
        .position(|t| !t.id.kind.f32_only())
        .expect("a matrix");
    for (big, fits) in [(65519.0f32, true), (65520.0, false), (-1e9, false)] {
        let mut values = inputs[m].data.to_vec();
        values[3] = big;
        let mut f16 = inputs.clone();
        f16[m].data = &values;
        f16[m].dtype = DType::F16;
        let r = packed_size(&cfg, &f16);
        if fits {
            assert!(r.is_ok(), "{big}: {r:?}");
        } else {
            let e = r.unwrap_err();
            assert_eq!(
                e,
                WriteError::F16Range {
                    id: inputs[m].id,
                    value: big
                }
            );
            assert!(e.to_string().contains("beyond the f16 range"), "{e}");
        }
        let mut f32s = f16.clone();
        f32s[m].dtype = DType::F32;
        assert!(packed_size(&cfg, &f32s).is_ok());
    }
}

/// Runs one step on a model that passed validation; must not panic whatever it holds.
/// Returns whether the step ran to its end.
fn run_one_step(model: &Model<'_>) -> bool {
    let n = model.state_len();
    let (mut x, mut zh, mut zl) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let mut logits = vec![0f32; model.logits_len()];
    let mut scratch = vec![0f32; model.scratch_len()];
    let tokens = vec![1u8; model.config().seq_len];
    let _ = model.embed_input(&tokens, 0, &mut x);
    let _ = model.reset_carry(&mut zh, &mut zl);
    model
        .step(&x, &mut zh, &mut zl, &mut logits, &mut scratch)
        .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Model::from_bytes(&bytes);
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend([1, 0, 0, 0]);
        with_magic.extend(&bytes);
        let _ = Model::from_bytes(&with_magic);
    }

    /// Edits of the header and table with a recomputed CRC reach the structural checks.
    #[test]
    fn structural_edits_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((0usize..2048, any::<u8>()), 1..6),
    ) {
        let mut file = small_files()[which].clone();
        let data_start = u32::from_le_bytes(file[28..32].try_into().unwrap()) as usize;
        for (pos, val) in edits {
            let pos = 8 + pos % (data_start - 8);
            file[pos] = val;
        }
        fix_crc(&mut file);
        if let Ok(model) = Model::from_bytes(&file) {
            let _ = run_one_step(&model);
        }
    }

    /// Hostile tensor values with a recomputed CRC: weights, int8 row scales and norms set to
    /// NaN, ±infinity, the largest finite values, subnormals, −0 and −128 bytes. The file loads
    /// (values are not validated) and every step runs to the end without a panic, on the
    /// integer int8 products (activation scales of NaN or infinity included) and on f16.
    #[test]
    fn hostile_tensor_values_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), 0usize..8), 1..40),
    ) {
        let mut file = small_files()[which].clone();
        let data_start = u32::from_le_bytes(file[28..32].try_into().unwrap()) as usize;
        let data_len = file.len() - 4 - data_start;
        let specials: [[u8; 4]; 8] = [
            f32::NAN.to_le_bytes(),
            f32::INFINITY.to_le_bytes(),
            f32::NEG_INFINITY.to_le_bytes(),
            f32::MAX.to_le_bytes(),
            f32::MIN_POSITIVE.to_le_bytes(),
            (-0.0f32).to_le_bytes(),
            [0x80; 4],
            [0x7f, 0x7c, 0xff, 0x7b],
        ];
        for (pos, kind) in edits {
            let at = data_start + (pos % data_len) / 4 * 4;
            let end = (at + 4).min(file.len() - 4);
            file[at..end].copy_from_slice(&specials[kind][..end - at]);
        }
        fix_crc(&mut file);
        let model = Model::from_bytes(&file);
        prop_assert!(model.is_ok(), "{:?}", model.err());
        prop_assert!(run_one_step(&model.unwrap()));
    }

    /// A single flipped bit anywhere (the CRC catches it).
    #[test]
    fn single_bit_flips_are_rejected(which in 0usize..4, pos in any::<usize>(), bit in 0u8..8) {
        let mut file = small_files()[which].clone();
        let pos = pos % file.len();
        file[pos] ^= 1 << bit;
        prop_assert!(Model::from_bytes(&file).is_err());
    }
}
