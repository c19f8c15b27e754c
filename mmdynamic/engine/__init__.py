# Copyright (c) mmdynamic contributors. All rights reserved.
