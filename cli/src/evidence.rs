//! `warrant evidence`: verify attestation evidence made by other tools, offline.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use warrant_attestation::certificate::Cert;
use warrant_attestation::piv::PivVerifier;
use warrant_attestation::tpm::{read_pcr_file, verify_quote, PcrFileFormat, TpmAttest, TpmPublic};
use warrant_attestation::AttestationError;

use super::args::{hex_bytes, Hex, Output};
use crate::{files, Error};

#[derive(Debug, Subcommand)]
pub(super) enum EvidenceCommand {
    /// Verify a TPM2_Quote made by tpm2-tools 5.x (exit 0 and the facts, 1 and the reason).
    TpmQuote(TpmQuoteArgs),
    /// Verify a YubiKey PIV attestation (e.g. `ykman piv keys attest` and `ykman piv
    /// certificates export f9`) against Yubico's pinned roots (exit 0 and the facts, 1 and the
    /// reason).
    Piv(PivArgs),
}

#[derive(Debug, Args)]
pub(super) struct PivArgs {
    /// The slot's attestation certificate (PEM or DER).
    #[arg(long)]
    slot_cert: PathBuf,
    /// The device's attestation certificate from slot f9 (PEM or DER).
    #[arg(long)]
    f9_cert: PathBuf,
    /// Also trust this root (PEM or DER; repeatable), e.g. a virtual card's test CA.
    #[arg(long = "root")]
    roots: Vec<PathBuf>,
    /// Accept ECDSA keys on firmware below 5.7.0 (YSA-2024-03 side channel).
    #[arg(long)]
    allow_ysa_2024_03: bool,
}

/// PCR file formats of `tpm2_quote -o` (its `-F`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum PcrsFormat {
    /// Little-endian TPML_PCR_SELECTION, a u32 count, then TPML_DIGESTs (the default).
    Serialized,
    /// The digests concatenated in selection order.
    Values,
}

#[derive(Debug, Args)]
pub(super) struct TpmQuoteArgs {
    /// The attestation key: TPM2B_PUBLIC (`tpm2_createak -u`).
    #[arg(long)]
    ak: PathBuf,
    /// The quoted TPMS_ATTEST (`tpm2_quote -m`).
    #[arg(long)]
    message: PathBuf,
    /// The TPMT_SIGNATURE (`tpm2_quote -s`, default `tss` format).
    #[arg(long)]
    signature: PathBuf,
    /// The PCR values (`tpm2_quote -o`).
    #[arg(long)]
    pcrs: PathBuf,
    /// Format of the PCR file.
    #[arg(long, value_enum, default_value = "serialized")]
    pcrs_format: PcrsFormat,
    /// The qualifying data the quote must carry (hex, `tpm2_quote -q`).
    #[arg(long, value_parser = hex_bytes)]
    nonce: Option<Hex>,
}

fn rejected(e: impl Into<AttestationError>) -> Error {
    Error::Rejected(warrant_envelope::Error::from(e.into()))
}

pub(super) fn run(cmd: EvidenceCommand, out: Output) -> Result<(), Error> {
    let (what, facts) = match cmd {
        EvidenceCommand::TpmQuote(args) => ("quote", tpm_quote(&args)?),
        EvidenceCommand::Piv(args) => ("attestation", piv(&args)?),
    };
    if out.json {
        out.print(&facts);
    } else {
        out.print(&json!({what: "valid", "facts": facts}));
    }
    Ok(())
}

fn read_cert(path: &std::path::Path) -> Result<Cert, Error> {
    Cert::from_pem_or_der(&files::read(path)?)
        .map_err(|e| Error::BadFile { path: path.to_owned(), reason: e.to_string() })
}

fn piv(args: &PivArgs) -> Result<Value, Error> {
    let mut verifier = PivVerifier::yubico().map_err(rejected)?.allow_ysa_2024_03(args.allow_ysa_2024_03);
    for root in &args.roots {
        verifier = verifier.with_root(read_cert(root)?);
    }
    let now = warrant_envelope::verify::Clock::now(&warrant_envelope::verify::SystemClock);
    let facts =
        verifier.verify(&read_cert(&args.slot_cert)?, &read_cert(&args.f9_cert)?, now).map_err(rejected)?;
    let (a, b, c) = facts.firmware;
    Ok(json!({
        "slot": facts.slot,
        "key": {"x": hex::encode(facts.key.x()), "y": hex::encode(facts.key.y())},
        "firmware": format!("{a}.{b}.{c}"),
        "serial": facts.serial,
        "pin_policy": facts.pin_policy.as_str(),
        "touch_policy": facts.touch_policy.as_str(),
        "form_factor": facts.form_factor.kind(),
        "fips": facts.form_factor.fips(),
        "root": facts.root,
    }))
}

fn tpm_quote(args: &TpmQuoteArgs) -> Result<Value, Error> {
    let ak = TpmPublic::from_tpm2b(&files::read(&args.ak)?).map_err(rejected)?;
    let message = files::read(&args.message)?;
    let signature = files::read(&args.signature)?;
    let attest = TpmAttest::parse(&message).map_err(rejected)?;
    let selection = match &attest.attested {
        warrant_attestation::tpm::Attested::Quote { selection, .. } => selection.clone(),
        warrant_attestation::tpm::Attested::Certify { .. } => {
            return Err(rejected(warrant_attestation::tpm::TpmError::WrongAttestType {
                expected: "quote",
                found: "a certify".into(),
            }))
        }
    };
    let format = match args.pcrs_format {
        PcrsFormat::Serialized => PcrFileFormat::Serialized,
        PcrsFormat::Values => PcrFileFormat::Values,
    };
    let pcrs = read_pcr_file(&files::read(&args.pcrs)?, format, &selection).map_err(rejected)?;
    let quote = verify_quote(&ak, &message, &signature, pcrs, args.nonce.as_ref().map(|n| n.0.as_slice()))
        .map_err(rejected)?;
    let mut banks = serde_json::Map::new();
    for pcr in &quote.pcrs {
        let bank = banks.entry(pcr.hash.as_str()).or_insert_with(|| json!({}));
        bank[pcr.index.to_string()] = json!(hex::encode(&pcr.value));
    }
    Ok(json!({
        "signer": {"name": hex::encode(&quote.signer), "key": ak.key_type()},
        "signature": {"scheme": quote.signature.alg.as_str(), "hash": quote.signature.hash.as_str()},
        "pcr_banks": quote.selection.iter().map(|b| b.hash.as_str()).collect::<Vec<_>>(),
        "pcrs": banks,
        "nonce": hex::encode(&quote.nonce),
        "nonce_checked": args.nonce.is_some(),
        "clock": {
            "clock_ms": quote.clock.clock,
            "reset_count": quote.clock.reset_count,
            "restart_count": quote.clock.restart_count,
            "safe": quote.clock.safe,
            "firmware_version": format!("{:016x}", quote.clock.firmware_version),
        },
    }))
}
