/**
 * Synthetic 3,072-dimension embeddings with the shape of real ones: a few topics, low intrinsic
 * dimension, unit length. Uniform noise in 3,072 dimensions would make every point nearly equidistant
 * from every other, so nearest-neighbour results and HNSW recall would mean nothing. Here each
 * document is a point in a small latent space (topic centre + spread), projected to 3,072 dimensions
 * by one fixed random matrix, plus a little isotropic noise, then normalised for cosine distance.
 */
export const EMBEDDING_DIMENSIONS = 3072;

/** mulberry32: a tiny seeded PRNG, so a corpus (and the workload's queries) can be reproduced. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviate (Box-Muller). */
export function gaussian(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

export interface EmbeddingSpaceOptions {
  seed?: number;
  topics: number;
  /** Dimension of the latent space: the corpus' intrinsic dimension. */
  latentDimensions?: number;
  /** Spread of documents around their topic centre, relative to the distance between centres. */
  topicSpread?: number;
  /** Isotropic noise per output dimension, relative to the projected signal. */
  noise?: number;
}

export class EmbeddingSpace {
  readonly topics: number;
  private readonly latent: number;
  private readonly spread: number;
  private readonly noise: number;
  /** Row-major 3072 x latent projection. */
  private readonly projection: Float64Array;
  private readonly centres: Float64Array[];

  constructor(options: EmbeddingSpaceOptions) {
    const random = seededRandom(options.seed ?? 1);
    this.topics = options.topics;
    this.latent = options.latentDimensions ?? 32;
    this.spread = options.topicSpread ?? 0.45;
    this.noise = options.noise ?? 0.05;
    this.projection = Float64Array.from({ length: EMBEDDING_DIMENSIONS * this.latent }, () => gaussian(random));
    this.centres = Array.from({ length: this.topics }, () => Float64Array.from({ length: this.latent }, () => gaussian(random)));
  }

  /** A unit-length embedding near topic `topic`'s centre; `random` decides where exactly. */
  embedding(topic: number, random: () => number): Float32Array {
    const centre = this.centres[topic % this.topics]!;
    const z = centre.map((c) => c + this.spread * gaussian(random));
    const out = new Float32Array(EMBEDDING_DIMENSIONS);
    // Uniform noise of the same variance as a normal deviate: three times cheaper, and the
    // distribution of a little noise in 3,072 dimensions does not matter.
    const noiseScale = this.noise * Math.sqrt(this.latent) * Math.sqrt(12);
    let norm = 0;
    for (let i = 0; i < EMBEDDING_DIMENSIONS; i++) {
      let v = 0;
      const row = i * this.latent;
      for (let j = 0; j < this.latent; j++) v += this.projection[row + j]! * z[j]!;
      v += noiseScale * (random() - 0.5);
      out[i] = v;
      norm += v * v;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < EMBEDDING_DIMENSIONS; i++) out[i] = out[i]! * scale;
    return out;
  }
}

/**
 * pgvector's text form, as integers with an exponent: '[1234e-5,-567e-5,...]' (pgvector parses
 * with strtof). Five decimals keep more precision than the halfvec index holds (about three
 * significant digits); integers format three times faster than decimals, which matters at
 * 3,072 values per vector.
 */
export function vectorLiteral(values: Float32Array): string {
  const scaled = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) scaled[i] = Math.round(values[i]! * 1e5);
  return `[${scaled.join('e-5,')}e-5]`;
}
