package blobstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Environment variables FromEnv reads.
const (
	EnvDir         = "FLEXCORD_BLOB_DIR"
	EnvS3Endpoint  = "FLEXCORD_S3_ENDPOINT"
	EnvS3Bucket    = "FLEXCORD_S3_BUCKET"
	EnvS3AccessKey = "FLEXCORD_S3_ACCESS_KEY"
	EnvS3SecretKey = "FLEXCORD_S3_SECRET_KEY"
	EnvS3Region    = "FLEXCORD_S3_REGION"
	EnvS3Prefix    = "FLEXCORD_S3_PREFIX"
	EnvS3Insecure  = "FLEXCORD_S3_INSECURE"
)

// s3Vars are the S3 settings other than the bucket, in the order errors name them.
var s3Vars = []string{EnvS3Endpoint, EnvS3AccessKey, EnvS3SecretKey, EnvS3Region, EnvS3Prefix, EnvS3Insecure}

// FromEnv chooses the store the environment describes: an S3-compatible bucket when
// FLEXCORD_S3_BUCKET is set, else the directory FLEXCORD_BLOB_DIR (default ./data/blobs). It
// returns the store and a description for operators (never a secret). Half an S3 configuration is
// an error that names what is missing, rather than a silent fall-back to the directory.
func FromEnv(getenv func(string) string) (Store, string, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	bucket := get(EnvS3Bucket)
	if bucket == "" {
		for _, v := range s3Vars {
			if get(v) != "" {
				return nil, "", fmt.Errorf("%s is set but %s is not: set the bucket to keep blobs in S3, or unset the FLEXCORD_S3_* variables to keep them in a directory", v, EnvS3Bucket)
			}
		}
		dir := get(EnvDir)
		if dir == "" {
			dir = DefaultDir
		}
		d, err := NewDir(dir)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvDir, err)
		}
		return d, "directory " + d.Root(), nil
	}
	if get(EnvDir) != "" {
		return nil, "", fmt.Errorf("both %s and %s are set: blobs go to one place, unset one", EnvDir, EnvS3Bucket)
	}
	var missing []string
	for _, v := range []string{EnvS3AccessKey, EnvS3SecretKey} {
		if get(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return nil, "", fmt.Errorf("%s is set but %s %s not: S3 needs both keys", EnvS3Bucket, strings.Join(missing, " and "), verb)
	}
	insecure := false
	if v := get(EnvS3Insecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, "", fmt.Errorf("%s=%q is not true or false", EnvS3Insecure, v)
		}
		insecure = b
	}
	s, err := NewS3(S3Config{
		Endpoint: get(EnvS3Endpoint), Bucket: bucket, AccessKey: get(EnvS3AccessKey), SecretKey: get(EnvS3SecretKey),
		Region: get(EnvS3Region), Prefix: get(EnvS3Prefix), Insecure: insecure,
	})
	if err != nil {
		return nil, "", errors.New(strings.TrimPrefix(err.Error(), "blobstore: "))
	}
	return s, s.String(), nil
}
