//! The images into the envelope, and under GitHub Actions the step outputs and summary.

use common::Ui;
use common::actions::{ItemOutputs, SummaryTable, item_outputs};
use common::envelope::{Envelope, Image};
use common::short::short_digest;

/// Adds (or replaces) each image in the envelope.
pub(crate) fn record(envelope: &mut Envelope, image: &Image) {
    envelope.upsert_image(image.clone());
}

/// Step outputs and the step summary under GitHub Actions.
pub(crate) fn report_outputs(images: &[Image], ui: &Ui) {
    let outputs: Vec<ItemOutputs> = images
        .iter()
        .map(|image| ItemOutputs {
            name: image.name.clone(),
            values: vec![
                ("image_id", image.id.clone().unwrap_or_default()),
                ("tags", image.tags.join(" ")),
            ],
        })
        .collect();
    ui.set_outputs(&item_outputs(&outputs));
    let mut table = SummaryTable::new(&["image", "tags", "id", "cache"]);
    for image in images {
        table.row([
            image.name.clone(),
            image.tags.join("<br>"),
            format!("`{}`", image.id.as_deref().map(short_digest).unwrap_or("-")),
            match (image.cache_hit, image.dry_run) {
                (_, true) => "dry run",
                (Some(true), _) => "reused",
                _ => "built",
            }
            .to_owned(),
        ]);
    }
    ui.summary(&table.to_markdown());
}
