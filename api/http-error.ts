/** An error with an HTTP status, answered as {"error": message}. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function badRequest(message: string): HttpError {
  return new HttpError(400, message);
}

/** The one shape every error answer has. */
export interface ErrorBody {
  readonly error: string;
}

export const errorBodySchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string' } },
} as const;
