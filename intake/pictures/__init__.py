"""Reading the pictures: the OCR engine, its pool of readers, the shared picture jobs, the facts read."""
