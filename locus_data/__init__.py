"""locus_data: COCO(-format) detections -> the cue-search parquet EasyR1 trains on (no torch)."""
