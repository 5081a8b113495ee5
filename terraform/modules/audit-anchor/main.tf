data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  bucket_arn   = aws_s3_bucket.audit.arn
  prefix_arn   = "${aws_s3_bucket.audit.arn}/${var.key_prefix}*"
}

# The audit bucket. Object Lock in compliance mode keeps every version of
# every record batch and digest for retention_days, whoever asks; versioning
# (which Object Lock needs) keeps a swapped object's original, which
# audit verify reads.
resource "aws_s3_bucket" "audit" {
  bucket              = var.bucket_name
  object_lock_enabled = true
  force_destroy       = false
  tags                = var.tags
}

resource "aws_s3_bucket_versioning" "audit" {
  bucket = aws_s3_bucket.audit.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id

  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.audit]
}

resource "aws_s3_bucket_public_access_block" "audit" {
  bucket                  = aws_s3_bucket.audit.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "audit" {
  bucket = aws_s3_bucket.audit.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# The records hold ids and last-4s, never a secret value: S3-managed keys.
resource "aws_s3_bucket_server_side_encryption_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "bucket" {
  # TLS only: a deny can only take away, so it names the whole service.
  statement {
    sid       = "TLSOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Nobody deletes the evidence or weakens its lock: not even a delete
  # marker (which hides an object from a plain listing), not the account root.
  statement {
    sid    = "NobodyDeletesOrUnlocks"
    effect = "Deny"
    actions = [
      "s3:BypassGovernanceRetention",
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:PutBucketObjectLockConfiguration",
      "s3:PutBucketVersioning",
      "s3:PutLifecycleConfiguration",
      "s3:PutObjectLegalHold",
      "s3:PutObjectRetention",
    ]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
  }

  # Only the rotator writes under the prefix.
  statement {
    sid       = "OnlyRotatorWrites"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:PrincipalArn"
      values   = [var.rotator_role_arn]
    }
  }
}

resource "aws_s3_bucket_policy" "audit" {
  bucket = aws_s3_bucket.audit.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.audit]
}

# The digest signing key. An asymmetric key: the rotator may only Sign, the
# auditors only Verify or read the public key. AWS does not rotate
# asymmetric keys (enable_key_rotation must stay false); a new key means a
# new key_id in the digests, which audit verify reads from each digest.
resource "aws_kms_key" "signing" {
  description              = "lakirotator ${var.environment}: signs the audit digests"
  key_usage                = "SIGN_VERIFY"
  customer_master_key_spec = "ECC_NIST_P256"
  deletion_window_in_days  = 30
  enable_key_rotation      = false
  policy                   = data.aws_iam_policy_document.key.json
  tags                     = var.tags
}

resource "aws_kms_alias" "signing" {
  name          = "alias/${var.name}-audit"
  target_key_id = aws_kms_key.signing.key_id
}

# In a key policy the resource "*" means "this key".
data "aws_iam_policy_document" "key" {
  statement {
    sid    = "KeyAdministration"
    effect = "Allow"
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:EnableKey",
      "kms:GetKeyPolicy",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  statement {
    sid       = "RotatorSigns"
    effect    = "Allow"
    actions   = ["kms:Sign"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [var.rotator_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:SigningAlgorithm"
      values   = ["ECDSA_SHA_256"]
    }
  }

  statement {
    sid       = "AuditorsVerify"
    effect    = "Allow"
    actions   = ["kms:GetPublicKey", "kms:Verify"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.auditor.arn]
    }
  }
}

# The rotator's audit permissions: exactly anchor.WriterCalls() in
# audit/anchor (terraform/iam_test.go holds the two equal).
data "aws_iam_policy_document" "rotator" {
  statement {
    sid       = "ShipRecordsAndDigests"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.prefix_arn]
  }

  # Finding the last digest on start-up, to continue the chain.
  statement {
    sid       = "ListOwnPrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.key_prefix}*"]
    }
  }

  statement {
    sid       = "SignDigests"
    effect    = "Allow"
    actions   = ["kms:Sign"]
    resources = [aws_kms_key.signing.arn]
  }
}

resource "aws_iam_role_policy" "rotator" {
  name   = "lakirotator-audit"
  role   = var.rotator_role_name
  policy = data.aws_iam_policy_document.rotator.json
}

# The auditors' role: read-only, exactly anchor.VerifierCalls().
data "aws_iam_policy_document" "assume_auditor" {
  statement {
    sid     = "Auditors"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = length(var.auditor_principal_arns) > 0 ? var.auditor_principal_arns : [local.account_root]
    }
  }
}

resource "aws_iam_role" "auditor" {
  name                 = "${var.name}-audit-verifier"
  description          = "lakirotator ${var.environment}: reads the audit bucket and verifies digest signatures"
  assume_role_policy   = data.aws_iam_policy_document.assume_auditor.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "auditor" {
  statement {
    sid       = "ReadEveryVersion"
    effect    = "Allow"
    actions   = ["s3:GetObjectVersion"]
    resources = ["${local.bucket_arn}/*"]
  }

  statement {
    sid       = "ListEveryVersion"
    effect    = "Allow"
    actions   = ["s3:ListBucketVersions"]
    resources = [local.bucket_arn]
  }

  statement {
    sid       = "VerifySignatures"
    effect    = "Allow"
    actions   = ["kms:GetPublicKey", "kms:Verify"]
    resources = [aws_kms_key.signing.arn]
  }
}

resource "aws_iam_role_policy" "auditor" {
  name   = "lakirotator-audit-verify"
  role   = aws_iam_role.auditor.id
  policy = data.aws_iam_policy_document.auditor.json
}
