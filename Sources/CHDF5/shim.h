#include <hdf5.h>

/* HDF5 defines these as function-like macros that Swift cannot import. */
static inline unsigned encore_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned encore_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned encore_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned encore_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline hid_t encore_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t encore_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t encore_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t encore_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t encore_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t encore_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t encore_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t encore_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t encore_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t encore_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t encore_H5P_LINK_ACCESS(void) { return H5P_LINK_ACCESS; }
/* H5T_VARIABLE is ((size_t)(-1)): a cast macro Swift does not import. */
static inline size_t encore_H5T_VARIABLE(void) { return H5T_VARIABLE; }
/* The default (per-thread in thread-safe builds) error stack. */
static inline hid_t encore_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t encore_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t encore_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t encore_H5P_ATTRIBUTE_CREATE(void) { return H5P_ATTRIBUTE_CREATE; }
/* H5S_UNLIMITED is ((hsize_t)(-1)): a cast macro Swift does not import. */
static inline hsize_t encore_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
