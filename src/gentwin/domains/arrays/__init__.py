"""Any user's array file as a dataset: HDF5, ROOT TTrees, npz/npy and CSV, named by config (``dataset=arrays``)."""
